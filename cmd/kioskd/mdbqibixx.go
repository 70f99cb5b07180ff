package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/qibixx"
)

// qibixxBaud is the boards' fixed line speed (docs/mdb.md, Transport B).
const qibixxBaud = 115200

// qibixxBoard is [mdb] with transport qibixx: a Qibixx board in
// cashless slave mode on a tty, or a simulator on tcp://host:port.
type qibixxBoard struct {
	device string
	r      *qibixx.Reader
	link   io.ReadWriteCloser // the tty opened at start; nil for TCP
}

// openQibixx opens the board's tty before anything starts, so that one
// that does not exist refuses the start as a missing pin does; a TCP
// simulator is dialled when the reader runs, so kioskd may start first.
func openQibixx(cfg *config.Config, svc *payment.Service, j *payment.Journal, hw *machine.Machine, log *slog.Logger) (*mdbReader, error) {
	qc := cfg.QibixxConfig()
	qc.Log = log
	rd, err := qibixx.New(qc)
	if err != nil {
		return nil, fmt.Errorf("mdb: %w", err)
	}
	b := &qibixxBoard{device: cfg.MDB.Device, r: rd}
	if !strings.HasPrefix(b.device, "tcp://") {
		if b.link, err = b.open(); err != nil {
			return nil, err
		}
	}
	_, ac := cfg.MDBConfig()
	r := &mdbReader{cfg: cfg.MDB, qx: b, hw: hw, log: log.With("component", "mdb-bus"),
		adapter: machine.NewMDB(rd, svc, j, ac, log)}
	log.Info("mdb reader", "address", fmt.Sprintf("%#x", cfg.MDB.Address), "transport", cfg.MDB.Transport, "device", cfg.MDB.Device)
	return r, nil
}

func (b *qibixxBoard) open() (io.ReadWriteCloser, error) {
	if addr, ok := strings.CutPrefix(b.device, "tcp://"); ok {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil, fmt.Errorf("mdb.device: %w", err)
		}
		return c, nil
	}
	p, err := serial.Open(serial.Config{Device: b.device, Baud: qibixxBaud})
	if err != nil {
		return nil, fmt.Errorf("mdb.device: %w", err)
	}
	return p, nil
}

// runQibixx is Run for a Qibixx board: the adapter, and the reader over
// the board's link, reopened with back-off whenever it fails, the "mdb"
// fault raised meanwhile.
func (r *mdbReader) runQibixx(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- r.adapter.Run(ctx) }()
	b := r.qx
	backoff := time.Second
	link := b.link
	for ctx.Err() == nil {
		var err error
		if link == nil {
			link, err = b.open()
		}
		if err == nil {
			r.hw.Fault("mdb", nil)
			began := time.Now()
			err = b.r.Serve(ctx, link)
			link = nil
			if err == nil {
				break
			}
			if time.Since(began) > time.Minute {
				backoff = time.Second // a link that held is not a failing one
			}
		}
		r.log.Warn("mdb board link failed; reopening", "err", err, "retry_in", backoff)
		r.hw.Fault("mdb", fmt.Errorf("board on %s: %w", b.device, err))
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return <-done
}

// status is Status for a Qibixx board. The board answers the bus
// itself, so there are no reply latencies to show: replies counts the
// board's lines, framing errors those refused.
func (b *qibixxBoard) status() *control.MDBStatus {
	return &control.MDBStatus{Device: b.device, Transport: config.MDBTransportQibixx, State: b.r.State().String(),
		Replies: b.r.Lines(), Connects: b.r.Connects(), Drops: b.r.Drops(), FramingErrors: b.r.Refused()}
}
