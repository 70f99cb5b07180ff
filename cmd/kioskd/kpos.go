package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/kpos"
)

// loadKPOSKeys reads every key file named in [kpos] and builds the keys
// both the client and the receiver use.
func loadKPOSKeys(k *kposConfig) (*kpos.Keys, error) {
	read := func(what, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("kpos.%s: %w", what, err)
		}
		return b, nil
	}
	keys := &kpos.Keys{Header: kpos.Header{Kid: k.JWEKid, EPKKid: k.EPKKid}}
	pem, err := read("signing_key", k.SigningKey)
	if err != nil {
		return nil, err
	}
	if keys.Ours, err = kpos.ParsePrivateKeyPEM(pem); err != nil {
		return nil, fmt.Errorf("kpos.signing_key: %w", err)
	}
	if pem, err = read("finexus_signing_public_key", k.FinexusSigningPub); err != nil {
		return nil, err
	}
	if keys.Theirs, err = kpos.ParsePublicKeyPEM(pem); err != nil {
		return nil, fmt.Errorf("kpos.finexus_signing_public_key: %w", err)
	}
	if k.ContentKey != "" {
		if keys.CEK, err = kpos.ParseRawKey(k.ContentKey); err != nil {
			return nil, fmt.Errorf("kpos.content_key: %w", err)
		}
		return keys, nil
	}
	if pem, err = read("ecdh_private_key", k.ECDHPrivateKey); err != nil {
		return nil, err
	}
	ours, err := kpos.ParsePrivateKeyPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("kpos.ecdh_private_key: %w", err)
	}
	if pem, err = read("finexus_ecdh_public_key", k.FinexusECDHPublic); err != nil {
		return nil, err
	}
	theirs, err := kpos.ParsePublicKeyPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("kpos.finexus_ecdh_public_key: %w", err)
	}
	info, err := kpos.ParseOtherInfo(k.KDFOtherInfo)
	if err != nil {
		return nil, err
	}
	if keys.CEK, err = kpos.DeriveKey(ours, theirs, info); err != nil {
		return nil, fmt.Errorf("kpos: deriving the content key: %w", err)
	}
	keys.Header.EPK = &ours.PublicKey
	return keys, nil
}

// startKPOS builds the provider and the notification receiver. The
// returned run function serves notifications until ctx ends.
func startKPOS(cfg *Config, j *payment.Journal, log *slog.Logger) (*payment.KPOS, func(context.Context) error, string, error) {
	k := &cfg.KPOS
	keys, err := loadKPOSKeys(k)
	if err != nil {
		return nil, nil, "", err
	}
	client := &kpos.Client{BaseURL: k.HostURL, Keys: keys, SourceSystem: k.SourceSystem, HTTP: &http.Client{Timeout: 15 * time.Second}}
	prov := payment.NewKPOS(payment.KPOSConfig{
		MID: k.MID, DeviceSN: k.DeviceSN, CallerDeviceType: k.CallerDeviceType, CallerDeviceVer: version,
		SequencePrefix: k.SequencePrefix, Currency: k.Currency,
	}, client, j, log)
	codes := kpos.Codes{BadSignature: k.CodeBadSignature, BadMessage: k.CodeBadMessage, UnknownMRN: k.CodeUnknownMRN, Busy: k.CodeBusy}
	recv := kpos.NewReceiver(kpos.ReceiverConfig{Keys: keys, SourceSystem: k.FinexusSourceSystem, OurSourceSystem: k.SourceSystem,
		ReplyMTI: k.ReplyMTI, Codes: codes, Log: log},
		func(ctx context.Context, n kpos.Notification, plain []byte) (string, error) {
			return prov.Notified(ctx, n, plain, codes)
		})
	mux := http.NewServeMux()
	mux.Handle(k.Path, recv)
	ln, err := net.Listen("tcp", k.Listen)
	if err != nil {
		return nil, nil, "", fmt.Errorf("kpos.listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	run := func(ctx context.Context) error {
		if k.SerialDevice != "" {
			go runKPOSSerial(ctx, k.SerialDevice, k.SerialBaud, prov, codes, log)
		}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
		}()
		var err error
		if k.TLSCert != "" {
			err = hs.ServeTLS(ln, k.TLSCert, k.TLSKey)
		} else {
			log.Warn("kpos notifications on plain HTTP (allow_plain_http)", "listen", ln.Addr().String())
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	return prov, run, ln.Addr().String(), nil
}

// runKPOSSerial keeps the serial notification link open until ctx ends,
// reopening it with back-off when the device goes away (a USB adapter
// unplugged, the terminal power-cycled).
func runKPOSSerial(ctx context.Context, dev string, baud int, prov *payment.KPOS, codes kpos.Codes, log *slog.Logger) {
	log = log.With("component", "kpos-serial", "device", dev)
	backoff := time.Second
	for ctx.Err() == nil {
		port, err := serial.Open(serial.Config{Device: dev, Baud: baud})
		if err != nil {
			log.Warn("kpos serial device not available", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		log.Info("kpos serial link open", "baud", baud)
		reason := serveKPOSSerial(ctx, port, prov, codes, log)
		port.Close()
		log.Warn("kpos serial link closed", "reason", reason)
	}
}

// serveKPOSSerial answers 0025 frames until the port ends. Each frame is
// journaled before it is answered; refusals follow
// kpos.DefaultSerialRefusals (a damaged frame is answered so that KPOS
// sends it again; what cannot be matched to a frame is not answered).
func serveKPOSSerial(ctx context.Context, port serial.Port, prov *payment.KPOS, codes kpos.Codes, log *slog.Logger) string {
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	refusals := kpos.DefaultSerialRefusals
	fr := kpos.NewFrameReader(port, 0)
	answer := func(code string) {
		frame := kpos.AppendFrame(nil, kpos.AppendResponseData(nil, code))
		if _, err := port.Write(frame); err != nil {
			log.Warn("kpos serial answer not written", "err", err)
		}
	}
	refuse := func(err error) {
		code, ok := refusals.Code(err)
		log.Warn("kpos serial frame refused", "reason", err.Error(), "answer", code)
		if ok {
			answer(code)
		}
	}
	for {
		data, err := fr.Next()
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // idle line; a partial frame is kept
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, os.ErrClosed):
			return err.Error()
		default:
			refuse(err)
			continue
		}
		n, err := kpos.ParseSerialNotification(data)
		if err != nil {
			refuse(err)
			continue
		}
		code, err := prov.SerialNotified(ctx, n, data, codes.UnknownMRN)
		if err != nil {
			// Not journaled: no answer, so KPOS sends it again.
			log.Error("kpos serial notification not recorded", "mrn", n.MRN, "err", err)
			continue
		}
		log.Info("kpos serial notification", "mrn", n.MRN, "result_code", n.ResultCode, "amount_sen", n.AmountSen, "answer", code)
		answer(code)
	}
}
