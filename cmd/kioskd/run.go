package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/fleet"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/internal/gctune"
	"github.com/kioskd/kioskd/logsink"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

func cmdRun(e *cli.Env, args []string) int {
	fs := e.Flags()
	cfgPath := fs.String("config", "", "config file (default: the embedded default, simulated board)")
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return code
	}
	gctune.Apply() // the process's, so here and not in runService, which tests call
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runService(ctx, e, *cfgPath, nil)
}

// runService is `kioskd run` once its flags are parsed: it serves until
// ctx ends (a signal, or a test) and returns the exit code.
func runService(ctx context.Context, e *cli.Env, cfgPath string, up chan<- started) int {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	// Nothing waits on stderr (a serial console): lines go through a
	// bounded queue that drops and counts what does not fit. The ring
	// behind `kioskd logs` keeps every line.
	sink := logsink.New(e.Stderr, cfg.LogFormat)
	ring := logsink.NewRing(1000)
	base := logsink.NewLogger(sink, cfg.LogFormat, cfg.LogLevel)
	log := slog.New(logsink.NewRingHandler(base.Handler(), ring, logsink.Level(cfg.LogLevel)))
	code := exitOK
	if err := serve(ctx, cfg, log, ring, up); err != nil {
		log.Error("kioskd stopped", "err", err)
		code = exitFail
	}
	// Bounded: a console that does not drain must not hold the exit.
	// What is left unwritten cannot be reported on that same stderr.
	sink.Close(logsink.FlushTimeout)
	return code
}

// retainEvery is how often the journal's outbox is trimmed after the
// trim at start: records age by the day, so a few times a day suffices.
const retainEvery = 6 * time.Hour

// started tells tests where the service listens once it is up.
type started struct {
	POSAddr  string
	KPOSAddr string
	Control  string
	Routes   []string // the control API's mux patterns, "METHOD /path"
}

// serve runs the service until ctx ends. Everything that can be checked is
// checked before anything is started: provision (what `config check`
// runs) comes before the journal, the sockets, the watchdog and the
// restart record. The journal is recovered before any listener opens, so
// nothing new can interleave with recovery.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, ring *logsink.Ring, up chan<- started) error {
	pv, err := config.Provision(cfg)
	if err != nil {
		return err
	}
	secret, allow := pv.Secret, pv.Allow
	if config.IsDevSecret(secret) {
		log.Warn("POS SECRET IS THE PUBLIC DEVELOPMENT KEY: anyone can forge payment results; set pos.secret_file before taking real money")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	jpath := filepath.Join(cfg.DataDir, "journal.db")
	// A journal is compacted only here, before it is open: bbolt cannot
	// shrink a file in use. A journal that cannot be compacted is used
	// as it is.
	if c, err := payment.CompactJournal(jpath); err != nil {
		log.Warn("journal not compacted; using it as it is", "err", err)
	} else if c.Compacted {
		log.Info("journal compacted", "bytes_before", c.Before, "bytes_after", c.After, "free_before", c.Free)
	}
	j, err := payment.OpenJournal(jpath)
	if err != nil {
		return err
	}
	defer j.Close()
	flagged, err := j.Recover(time.Now())
	if err != nil {
		return err
	}
	for _, t := range flagged {
		log.Warn("payment needs review after restart", "txn_id", t.ID, "state", t.State, "vend", t.Vend, "amount", t.Amount.String(), "review", t.Review)
	}

	// Each resource's cleanup is deferred as it is acquired, so every
	// return below releases what came before it, in reverse order.
	ctl, err := control.Listen(cfg.Control.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Control.Socket)
	defer ctl.Close() // also closed by the HTTP server's shutdown; twice is harmless
	// The slot RAUC booted; the crash guard counts the starts of this
	// version from this slot only, and an update is judged by it.
	slot := machine.BootedSlot(cfg.Update.Cmdline)
	guard := machine.NewCrashGuard(cfg.DataDir, version, slot)
	// An update that rebooted into this start is judged before anything
	// sells: took, or rolled back (and then never retried on its own).
	lastFailed := machine.SettleUpdate(cfg.DataDir, version, slot, time.Now(), log)
	hw, err := machine.Open(cfg.MachineConfig(), pv.Board, log)
	if err != nil {
		machine.RefusalBackoff(ctx, guard, err, log)
		return err
	}
	defer hw.Close()
	if hw.CrashBackoff(ctx, guard, log) {
		return nil
	}
	prov := payment.NewMobyPay(cfg.KioskID, secret, log)
	if w := cfg.POS.TimestampWindow.Duration; w > 0 {
		prov.Window = w
	}
	providers := []payment.Provider{prov}
	var kp *payment.KPOS
	var runKPOS func(context.Context) error
	var kposAddr string
	if cfg.KPOS.Enabled {
		if kp, runKPOS, kposAddr, err = startKPOS(cfg, j, log); err != nil {
			return err
		}
		providers = append(providers, kp)
	}
	svc := payment.NewService(cfg.PaymentConfig(log), j, hw, hw, providers...)
	if kp != nil {
		kp.Bind(svc)
	}
	upd := hw.NewUpdater(ctx, machine.UpdateConfig{Rauc: cfg.Update.Rauc, Reboot: cfg.Update.Reboot, Wait: cfg.Update.Wait.Duration,
		DataDir: cfg.DataDir, Version: version, Slot: slot}, svc, lastFailed)
	srv, err := mobypay.NewServer(mobypay.ServerConfig{
		Addr: cfg.POS.Listen, Secret: secret, Window: cfg.POS.TimestampWindow.Duration,
		MaxFrame: cfg.POS.MaxFrame, AllowPeers: allow, Log: log,
		Seen:       journaledNonces(j, time.Now(), log),
		LastProven: loadLastProven(cfg.DataDir),
		OnProven:   func(a netip.Addr) { saveLastProven(cfg.DataDir, a, log) },
	}, prov)
	if err != nil {
		return err
	}
	prov.Bind(srv, svc)
	var ship *fleet.Shipper
	if cfg.Fleet.Enabled {
		if ship, err = startFleet(cfg, j, svc, hw, upd, log); err != nil {
			return err
		}
	}
	var reader *mdbReader
	if cfg.MDB.Enabled {
		if reader, err = openMDB(cfg, svc, j, hw, log); err != nil {
			return err
		}
	}
	startedAt := time.Now()
	api := control.NewServer(svc)
	api.Status = func() any {
		var mdbState *control.MDBStatus
		if reader != nil {
			mdbState = reader.Status()
		}
		return control.Status{
			POS: svc.POS(), Current: svc.Current(),
			KioskID: cfg.KioskID, Version: version, Board: cfg.Board.Kind,
			POSListen: srv.Addr().String(), POSConnectTo: control.ConnectAddrs(srv.Addr()),
			POSStats: control.POSStatsOf(srv.Stats()), UptimeS: int64(time.Since(startedAt).Seconds()),
			KPOSListen: kposAddr, Hardware: hw.State(), Fleet: fleetState(cfg, ship),
			MDB: mdbState, Slot: slot, Update: upd.State(),
		}
	}
	routes := append(api.Routes(), hw.Routes(svc, func() []string { return control.ConnectAddrs(srv.Addr()) })...)
	routes = append(routes, control.Route{Pattern: "GET /v1/logs", Handler: control.LogsHandler(ring.Last)},
		control.Route{Pattern: "POST /v1/update", Handler: control.UpdateHandler(upd)},
		control.Route{Pattern: "GET /v1/health", Handler: control.HealthHandler(func(minUp time.Duration) control.Health {
			up := time.Since(startedAt)
			h := control.Health{UpS: int64(up.Seconds()), MinUpS: int64(minUp.Seconds()), Version: version, Slot: slot,
				Checks: machine.HealthChecks(j, hw.State(), up, minUp), Busy: svc.Current() != nil, Healthy: true}
			for _, c := range h.Checks {
				h.Healthy = h.Healthy && c.OK
			}
			return h
		})})
	var traceSrc control.MDBTraceSource // a nil *mdbReader would not be a nil interface
	if reader != nil {
		traceSrc = reader
	}
	traceStop := make(chan struct{})
	routes = append(routes, control.Route{Pattern: "GET /v1/mdb/trace", Handler: control.MDBTraceHandler(traceSrc, traceStop)})
	mux, patterns := control.Mux(routes)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	// Trace streams end when the API shuts down, so that Shutdown has
	// no stream to wait for.
	hs.RegisterOnShutdown(func() { close(traceStop) })

	parent := ctx
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var wg sync.WaitGroup
	fail := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("%s: %w", what, err))
		}
	}
	if runKPOS != nil {
		wg.Add(1)
		go func() { defer wg.Done(); fail("kpos receiver", runKPOS(ctx)) }()
	}
	// The journal is trimmed and pruned beside the service, never on its
	// loop; with the fleet on, only what the broker acknowledged.
	wg.Go(func() { payment.Retain(ctx, j, cfg.Journal.Keep.Duration, ship != nil, retainEvery, log) })
	if ship != nil {
		wg.Go(func() { fail("fleet shipper", ship.Run(ctx)) })
	}
	if reader != nil {
		wg.Go(func() { fail("mdb reader", reader.Run(ctx)) })
	}
	wg.Add(4)
	go func() { defer wg.Done(); fail("machine", hw.Run(ctx, svc, j)) }()
	go func() { defer wg.Done(); fail("payment service", svc.Run(ctx)) }()
	go func() { defer wg.Done(); fail("pos server", srv.Serve(ctx)) }()
	go func() {
		defer wg.Done()
		if err := hs.Serve(ctl); !errors.Is(err, http.ErrServerClosed) {
			fail("control api", err)
		}
	}()
	log.Info("kioskd started", "version", version, "config", cfg.Source, "kiosk_id", cfg.KioskID,
		"board", cfg.Board.Kind, "data_dir", cfg.DataDir, "control", cfg.Control.Socket,
		"pos_listen", srv.Addr().String(), "pos_connect_to", control.ConnectAddrs(srv.Addr()))
	if up != nil {
		up <- started{POSAddr: srv.Addr().String(), KPOSAddr: kposAddr, Control: cfg.Control.Socket, Routes: patterns}
	}
	<-ctx.Done()
	cause := context.Cause(ctx)
	log.Info("kioskd stopping", "reason", cause)
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	hs.Close() // event streams do not end on Shutdown
	wg.Wait()
	if parent.Err() != nil {
		if err := guard.CleanStop(); err != nil {
			log.Warn("restart record not cleared", "err", err)
		}
		return nil // asked to stop
	}
	return cause
}
