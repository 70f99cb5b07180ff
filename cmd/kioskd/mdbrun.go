package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kioskd/kioskd/config"
	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// mdbReader is [mdb] wired: the transport, the cashless device, its bus
// loop and the adapter that turns its vends into payments.
type mdbReader struct {
	cfg     config.MDB
	t       devmdb.Transport
	dev     *mdb.Device
	adapter *machine.MDB
	hw      *machine.Machine
	log     *slog.Logger
	loop    *devmdb.Loop
}

// openMDB opens the transport once before anything starts, so that a
// device that does not exist refuses the start as a missing pin does.
func openMDB(cfg *config.Config, svc *payment.Service, j *payment.Journal, hw *machine.Machine, log *slog.Logger) (*mdbReader, error) {
	dc, ac := cfg.MDBConfig()
	dev, err := mdb.New(dc)
	if err != nil {
		return nil, fmt.Errorf("mdb: %w", err)
	}
	r := &mdbReader{cfg: cfg.MDB, dev: dev, hw: hw, log: log.With("component", "mdb-bus")}
	if r.t, err = r.open(); err != nil {
		return nil, err
	}
	r.adapter = machine.NewMDB(dev, svc, j, ac, log)
	log.Info("mdb reader", "address", fmt.Sprintf("%#x", cfg.MDB.Address), "transport", cfg.MDB.Transport, "device", cfg.MDB.Device)
	return r, nil
}

func (r *mdbReader) open() (devmdb.Transport, error) {
	if r.cfg.Transport == config.MDBTransportUART {
		u, err := devmdb.OpenUART(r.cfg.Device)
		if err != nil {
			return nil, fmt.Errorf("mdb.device: %w", err)
		}
		return u, nil
	}
	s, err := devmdb.OpenStream(r.cfg.Device, devmdb.StreamOptions{})
	if err != nil {
		return nil, fmt.Errorf("mdb.device: %w", err)
	}
	return s, nil
}

// Run runs the adapter and the bus loop until ctx ends. A transport that
// fails for good (a serial adapter unplugged, a pty gone) raises the
// "mdb" fault and is reopened with back-off: the reader is one way of
// selling among others, and its failure never stops the service.
func (r *mdbReader) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- r.adapter.Run(ctx) }()
	backoff := time.Second
	for {
		r.loop = devmdb.NewLoop(r.t, r.dev, devmdb.Options{})
		err := r.loop.Run(ctx)
		r.t.Close()
		if ctx.Err() != nil {
			break
		}
		r.log.Warn("mdb bus failed; reopening", "err", err, "retry_in", backoff)
		r.hw.Fault("mdb", fmt.Errorf("bus on %s failed: %w", r.cfg.Device, err))
		for {
			select {
			case <-ctx.Done():
				return <-done
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			t, err := r.open()
			if err == nil {
				r.t = t
				r.hw.Fault("mdb", nil)
				r.log.Info("mdb bus reopened", "device", r.cfg.Device)
				break
			}
			r.log.Warn("mdb bus not reopened", "err", err, "retry_in", backoff)
		}
	}
	return <-done
}
