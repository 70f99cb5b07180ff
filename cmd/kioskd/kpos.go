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
	"sync"
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

// startKPOS builds the provider and the notification receivers (HTTP,
// and serial when kpos.serial_device is set). The returned run function
// serves notifications until ctx ends.
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
	var serialRecv *kpos.SerialReceiver
	if dev, baud := k.SerialDevice, k.SerialBaud; dev != "" {
		serialRecv = kpos.NewSerialReceiver(kpos.SerialReceiverConfig{
			Open: func() (io.ReadWriteCloser, error) { return serial.Open(serial.Config{Device: dev, Baud: baud}) },
			Log:  log.With("device", dev, "baud", baud),
		}, func(ctx context.Context, n kpos.SerialNotification, data []byte) (string, error) {
			return prov.SerialNotified(ctx, n, data, codes.UnknownMRN)
		})
	}
	run := func(ctx context.Context) error {
		// The serial receiver stops with the HTTP one, whether ctx ended
		// or Serve failed, and run returns only once both have.
		ctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			stop()
			wg.Wait()
		}()
		if serialRecv != nil {
			wg.Go(func() { serialRecv.Run(ctx) })
		}
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			hs.Shutdown(sctx)
		})
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
