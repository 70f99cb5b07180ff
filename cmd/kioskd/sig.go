package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

type secretFlags struct {
	secret, secretFile, config string
}

func (s *secretFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&s.secret, "secret", "", "shared secret")
	fs.StringVar(&s.secretFile, "secret-file", "", "file holding the shared secret")
	fs.StringVar(&s.config, "config", "", "take the secret from this kioskd config")
}

// resolve picks the secret: -secret, -secret-file, -config, else the
// public development key, with a warning so nobody mistakes it for theirs.
func (s *secretFlags) resolve(e *cli.Env) ([]byte, error) {
	n := 0
	for _, v := range []string{s.secret, s.secretFile, s.config} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("give one of -secret, -secret-file and -config")
	}
	switch {
	case s.secret != "":
		return []byte(s.secret), nil
	case s.secretFile != "":
		return config.ReadSecretFile(s.secretFile)
	case s.config != "":
		cfg, err := config.Load(s.config)
		if err != nil {
			return nil, err
		}
		return cfg.POSSecret()
	}
	fmt.Fprintf(e.Stderr, "kioskd: no secret given; using the public development key %q\n", mobypay.DevSecret)
	return []byte(mobypay.DevSecret), nil
}

// start parses the flags, resolves the secret and returns a codec and a
// frame reader over stdin, or the exit code to return.
func (s *secretFlags) start(e *cli.Env, fs *flag.FlagSet, args []string) (*mobypay.Codec, *mobypay.FrameReader, int, bool) {
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return nil, nil, code, false
	}
	secret, err := s.resolve(e)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return nil, nil, exitUsage, false
	}
	return mobypay.NewCodec(secret), mobypay.NewFrameReader(e.Stdin, mobypay.MaxFrame), 0, true
}

// sigVerify is the integrator's tool for "invalid signature" reports: it
// judges envelopes exactly as the kiosk does, minus the live-session checks
// (timestamp window, nonces), so captured old traffic can be checked.
func sigVerify(e *cli.Env, args []string) int {
	fs := e.Flags()
	var sf secretFlags
	sf.register(fs)
	verbose := fs.Bool("v", false, "also print the canonical payload and the expected signature")
	codec, fr, code, ok := sf.start(e, fs, args)
	if !ok {
		return code
	}
	out := bufio.NewWriter(e.Stdout)
	defer out.Flush()
	var n, bad int
	var m mobypay.Message
	for {
		frame, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		n++
		if errors.Is(err, mobypay.ErrFrameTooLarge) {
			bad++
			fmt.Fprintf(out, "bad: %v\n", err)
			continue
		}
		if err != nil {
			fmt.Fprintf(e.Stderr, "kioskd: reading stdin: %v\n", err)
			return exitFail
		}
		err = codec.Open(frame)
		if err != nil {
			bad++
			fmt.Fprintf(out, "bad: %v\n", err)
		} else {
			desc := ""
			if codec.Decode(&m) == nil {
				desc = " " + m.Type
				if m.Status != "" {
					desc += " " + m.Status
				}
				if m.TxnID != "" {
					desc += " " + m.TxnID
				}
			}
			fmt.Fprintf(out, "ok%s\n", desc)
		}
		if *verbose && !errors.Is(err, mobypay.ErrMalformed) {
			fmt.Fprintf(out, "  canonical: %s\n  expected:  %s\n", codec.Canonical(), codec.ExpectedSignature())
		}
	}
	if n == 0 {
		fmt.Fprintln(e.Stderr, "kioskd: no envelopes on stdin")
		return exitFail
	}
	if bad > 0 {
		return exitFail
	}
	return exitOK
}

func sigSign(e *cli.Env, args []string) int {
	fs := e.Flags()
	var sf secretFlags
	sf.register(fs)
	fresh := fs.Bool("fresh", false, "set timestamp to now and nonce to a new UUID before signing, so a live kiosk accepts the message")
	verbose := fs.Bool("v", false, "also print the canonical payload")
	codec, fr, code, ok := sf.start(e, fs, args)
	if !ok {
		return code
	}
	out := bufio.NewWriter(e.Stdout)
	defer out.Flush()
	var n, bad int
	var buf []byte
	for {
		payload, err := fr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		n++
		if err == nil && *fresh {
			payload, err = mobypay.Refresh(payload, time.Now())
		}
		if err == nil {
			buf, err = codec.Seal(buf[:0], payload)
		}
		if err != nil {
			bad++
			fmt.Fprintf(e.Stderr, "kioskd: payload %d: %v\n", n, err)
			continue
		}
		out.Write(buf)
		if *verbose {
			fmt.Fprintf(out, "  canonical: %s\n", codec.Canonical())
		}
	}
	if n == 0 {
		fmt.Fprintln(e.Stderr, "kioskd: no payloads on stdin")
		return exitFail
	}
	if bad > 0 {
		return exitFail
	}
	return exitOK
}
