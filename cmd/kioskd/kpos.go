package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/kpos"
)

// startKPOS builds the provider and the notification receivers (HTTP,
// and serial when kpos.serial_device is set). The returned run function
// serves notifications until ctx ends.
func startKPOS(cfg *config.Config, j *payment.Journal, log *slog.Logger) (*payment.KPOS, func(context.Context) error, string, error) {
	k := &cfg.KPOS
	keys, err := k.Keys()
	if err != nil {
		return nil, nil, "", err
	}
	link := k.Link()
	prov := payment.NewKPOS(k.Provider(version), link.Client(keys, &http.Client{Timeout: 15 * time.Second}), j, log)
	codes := link.Codes
	recv := kpos.NewReceiver(link.ReceiverConfig(keys, log),
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
