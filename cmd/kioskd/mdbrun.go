package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
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
	// loop is the bus loop of the transport now open. Run replaces it on
	// every reopen while the control API reads it for status, hence the
	// atomic pointer; nil until Run starts the first one.
	loop atomic.Pointer[devmdb.Loop]
	// cur is r.t as Run last set it, for the stream's counters in
	// status: Run alone writes r.t, while status reads from elsewhere.
	cur atomic.Pointer[devmdb.Transport]
	// trace keeps the bus loop's last exchanges for GET /v1/mdb/trace
	// (mdbring.go). It is the reader's, not a loop's: a reopened
	// transport's exchanges follow the old one's in the same ring.
	trace *devmdb.TraceRing
	// qx, for transport qibixx, is the board that runs the bus itself;
	// then t, dev and the loop are unused (mdbqibixx.go).
	qx *qibixxBoard
}

// openMDB opens the transport once before anything starts, so that a
// device that does not exist refuses the start as a missing pin does.
func openMDB(cfg *config.Config, svc *payment.Service, j *payment.Journal, hw *machine.Machine, log *slog.Logger) (*mdbReader, error) {
	if cfg.MDB.Transport == config.MDBTransportQibixx {
		return openQibixx(cfg, svc, j, hw, log)
	}
	dc, ac := cfg.MDBConfig()
	dev, err := mdb.New(dc)
	if err != nil {
		return nil, fmt.Errorf("mdb: %w", err)
	}
	r := &mdbReader{cfg: cfg.MDB, dev: dev, hw: hw, log: log.With("component", "mdb-bus"),
		trace: devmdb.NewTraceRing(mdbTraceSize, control.MaxMDBTraceStreams)}
	if r.t, err = r.open(); err != nil {
		return nil, err
	}
	r.cur.Store(&r.t)
	r.adapter = machine.NewMDB(dev, svc, j, ac, log)
	log.Info("mdb reader", "address", fmt.Sprintf("%#x", cfg.MDB.Address), "transport", cfg.MDB.Transport, "device", cfg.MDB.Device, "gap", cfg.MDB.Gap.Duration)
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
	if r.qx != nil {
		return r.runQibixx(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- r.adapter.Run(ctx) }()
	backoff := time.Second
	for {
		loop := devmdb.NewLoop(r.t, r.dev, devmdb.Options{Gap: r.cfg.Gap.Duration, Trace: r.trace.Put})
		r.loop.Store(loop)
		err := loop.Run(ctx)
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
				r.cur.Store(&t)
				r.hw.Fault("mdb", nil)
				r.log.Info("mdb bus reopened", "device", r.cfg.Device)
				break
			}
			r.log.Warn("mdb bus not reopened", "err", err, "retry_in", backoff)
		}
	}
	return <-done
}

// Status is the reader for GET /v1/status. The latencies are the open
// bus's: a reopened transport starts a new loop and a new histogram, so
// that what status shows is how the bus answers now.
func (r *mdbReader) Status() *control.MDBStatus {
	if r.qx != nil {
		return r.qx.status()
	}
	st := &control.MDBStatus{Device: r.cfg.Device, Transport: r.cfg.Transport, State: r.dev.State().String()}
	if l := r.loop.Load(); l != nil {
		s := l.Stats()
		st.Replies, st.Late, st.P50, st.P99, st.Max = s.Count, s.Late, s.P50, s.P99, s.Max
	}
	if t := r.cur.Load(); t != nil {
		if s, ok := (*t).(*devmdb.Stream); ok {
			st.Connects, st.Drops, st.FramingErrors = s.Connects(), s.Drops(), s.FramingErrors()
		}
	}
	return st
}
