package mobypay

import (
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// The package's errors wrap one another (envelope around JSON syntax,
// no nonce around a stale timestamp, send around write frame); these
// tests walk typical failures through the public entry points and check
// that each message names the package exactly once and still matches its
// sentinel, so nobody needs to strip prefixes to print them.

func checkOnce(t *testing.T, what string, err error, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	if n := strings.Count(err.Error(), errPrefix); n != 1 || !strings.HasPrefix(err.Error(), errPrefix) {
		t.Errorf("%s: %q names the package %d times, want once at the front", what, err, n)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("%s: %v is not %v", what, err, want)
	}
}

func TestErrorsNamePackageOnce(t *testing.T) {
	signed := string(posFrame(t, srvSecret, "TXN1", time.Now()))
	var syntax *SyntaxError
	open := []struct {
		name, wire string
		want       error
		msg        string
		syntax     bool // a *SyntaxError is wrapped too
	}{
		{"bad JSON", `{"payload":`, ErrMalformed, "malformed envelope: json: unexpected end of input at offset 11", true},
		{"envelope not an object", `[1]`, ErrMalformed, "malformed envelope: not a JSON object", false},
		{"no payload", `{"signature":"00"}`, ErrMalformed, "malformed envelope: no payload", false},
		{"payload not an object", `{"payload":"x","signature":"00"}`, ErrMalformed, "malformed envelope: payload is not an object", false},
		{"bad escape in payload", `{"payload":{"a":"\x"},"signature":"00"}`, ErrMalformed, `malformed envelope: payload: json: bad escape \x at offset 17`, true},
		{"bad canonical number", `{"payload":{"a":01},"signature":"00"}`, ErrMalformed, "malformed envelope: json: leading zero in number", true},
		{"too many digits", `{"payload":{"a":` + strings.Repeat("9", 4301) + `}}`, ErrMalformed, "json: integer has too many digits", true},
		{"duplicate key", `{"payload":{"a":1,"a":2},"signature":"00"}`, ErrMalformed, `json: duplicate key "a"`, true},
		{"no signature", `{"payload":{"a":1}}`, ErrSignature, "invalid signature: no signature", false},
		{"short signature", `{"payload":{"a":1},"signature":"00"}`, ErrSignature, "invalid signature: signature has 2 characters", false},
		{"bad signature", strings.Replace(signed, `"processing"`, `"approved"`, 1), ErrSignature, "invalid signature: does not match the payload", false},
	}
	c := NewCodec(srvSecret)
	for _, tc := range open {
		err := c.Open([]byte(strings.TrimSpace(tc.wire)))
		checkOnce(t, "Open "+tc.name, err, tc.want)
		if err != nil && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Open %s: %q lacks %q", tc.name, err, tc.msg)
		}
		if tc.syntax && !errors.As(err, &syntax) {
			t.Errorf("Open %s: %v does not wrap a *SyntaxError", tc.name, err)
		}
	}
	var m Message
	c.Open([]byte(`[1]`))
	checkOnce(t, "Decode after a failed Open", c.Decode(&m), nil)

	// Outside an envelope the syntax error names the package itself.
	_, err := Canonical([]byte(`{"a":1e}`))
	checkOnce(t, "Canonical", err, nil)
	if !errors.As(err, &syntax) {
		t.Errorf("Canonical: %v is not a *SyntaxError", err)
	}
	_, err = c.Seal(nil, []byte(`{"a":1e}`))
	checkOnce(t, "Seal bad number", err, nil)
	_, err = c.Seal(nil, []byte(`[1]`))
	checkOnce(t, "Seal non-object payload", err, nil)
	_, err = c.AppendSignature(nil, []byte(`{"a":"\ud800"}`))
	checkOnce(t, "AppendSignature lone surrogate", err, nil)
	if !errors.As(err, &syntax) {
		t.Errorf("AppendSignature: %v is not a *SyntaxError", err)
	}
	_, err = c.AppendTransactionRequest(nil, Header{TxnID: "T"}, 0, ModeCard)
	checkOnce(t, "AppendTransactionRequest amount", err, nil)

	now := time.Now()
	g := NewReplayGuard(0, 0)
	old := "1000"
	checkOnce(t, "stale", g.Check(now, old, "n1"), ErrStale)
	checkOnce(t, "bad timestamp", g.Check(now, "soon", "n1"), nil)
	checkOnce(t, "no timestamp", g.Check(now, "", "n1"), nil)
	noNonceStale := g.Check(now, old, "")
	checkOnce(t, "no nonce, stale", noNonceStale, ErrNoNonce)
	checkOnce(t, "no nonce, stale", noNonceStale, ErrStale)
	checkOnce(t, "no nonce, no timestamp", g.Check(now, "", ""), ErrNoNonce)
	fresh := strconv.FormatInt(now.UnixMilli(), 10)
	if err := g.Check(now, fresh, "n2"); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, "replay", g.Check(now, fresh, "n2"), ErrReplay)
	full := NewReplayGuard(0, 1)
	full.Check(now, fresh, "a")
	checkOnce(t, "guard full", full.Check(now, fresh, "b"), ErrFull)

	fr := NewFrameReader(strings.NewReader(strings.Repeat("x", 100)+"\n"), 10)
	_, err = fr.Next()
	checkOnce(t, "oversize", err, ErrFrameTooLarge)
	checkOnce(t, "WriteFrame without newline", WriteFrame(io.Discard, []byte("x")), nil)
	checkOnce(t, "WriteFrame failing", WriteFrame(failWriter{}, []byte("x\n")), io.ErrClosedPipe)

	srv, _ := startServer(t, ServerConfig{})
	checkOnce(t, "Send without POS", srv.Send([]byte("x\n")), ErrNotConnected)
	_, err = NewServer(ServerConfig{Addr: "127.0.0.1:0"}, &recHandler{})
	checkOnce(t, "NewServer without secret", err, nil)
	_, err = NewServer(ServerConfig{Addr: srv.Addr().String(), Secret: srvSecret}, &recHandler{})
	checkOnce(t, "NewServer on a used port", err, nil)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestServerRefusalReasons sends one frame of each refusal class and reads
// the reason the server logs, and the error Late is given.
func TestServerRefusalReasons(t *testing.T) {
	h := &memHandler{ch: make(chan slog.Record, 64)}
	srv, rec := startServer(t, ServerConfig{Log: slog.New(h)})
	c := mobypaytest.Dial(t, srv.Addr(), "")
	awaitState(t, rec, Connected)

	good := posFrame(t, srvSecret, "TXN1", time.Now())
	stale := posFrame(t, srvSecret, "TXN2", time.Now().Add(-time.Hour))
	cases := []struct {
		name  string
		frame string
		want  error
		msg   string
	}{
		{"bad JSON", "{\"payload\": {\"a\": 01}}\n", ErrMalformed, "mobypay: malformed envelope: json: leading zero in number at offset 19"},
		{"bad signature", strings.Replace(string(good), `"processing"`, `"approved"`, 1), ErrSignature, "mobypay: invalid signature: does not match the payload"},
		{"accepted", string(good), nil, ""},
		{"replay", string(good), ErrReplay, "mobypay: nonce already used"},
		{"stale", string(stale), ErrStale, "mobypay: timestamp outside window: "},
	}
	for _, tc := range cases {
		mobypaytest.Write(t, c, tc.frame)
		if tc.want == nil {
			awaitMsg(t, rec, TypeAck, StatusProcessing, "TXN1")
			continue
		}
		var r slog.Record
		for {
			r = mobypaytest.Await(t, h.ch, tc.name+" log line")
			if attrOf(r, "reason") != "" {
				break
			}
		}
		reason := attrOf(r, "reason")
		checkOnce(t, tc.name+" log reason", errors.New(reason), nil)
		if !strings.HasPrefix(reason, tc.msg) {
			t.Errorf("%s: logged %q, want %q", tc.name, reason, tc.msg)
		}
		if errors.Is(tc.want, ErrStale) {
			l := mobypaytest.Await(t, rec.Lates, "Late")
			checkOnce(t, "Late", l.Err, ErrStale)
		}
	}
}
