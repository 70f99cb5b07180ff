package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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
	var serialRecv *kpos.SerialReceiver
	if dev, baud := k.SerialDevice, k.SerialBaud; dev != "" {
		serialRecv = kpos.NewSerialReceiver(kpos.SerialReceiverConfig{
			Open: func() (io.ReadWriteCloser, error) { return serial.Open(serial.Config{Device: dev, Baud: baud}) },
			Log:  log.With("device", dev, "baud", baud),
		}, func(ctx context.Context, n kpos.SerialNotification, data []byte) (string, error) {
			return prov.SerialNotified(ctx, n, data, codes.UnknownMRN)
		})
	}
	ep, err := kpos.Listen(link, recv, serialRecv, log)
	if err != nil {
		return nil, nil, "", err
	}
	return prov, ep.Run, ep.Addr(), nil
}
