package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/logsink"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

func cmdRun(e *env, args []string) int {
	fs := e.flags()
	cfgPath := fs.String("config", "", "config file (default: the embedded default, simulated board)")
	if code, ok := e.parse(fs, args, 0, 0); !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runService(ctx, e, *cfgPath, nil)
}

// runService is `kioskd run` once its flags are parsed: it serves until
// ctx ends (a signal, or a test) and returns the exit code.
func runService(ctx context.Context, e *env, cfgPath string, up chan<- started) int {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "kioskd: %v\n", err)
		return exitFail
	}
	// Nothing waits on stderr (a serial console): lines go through a
	// bounded queue that drops and counts what does not fit. The ring
	// behind `kioskd logs` keeps every line.
	sink := logsink.New(e.stderr, cfg.LogFormat)
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
func serve(ctx context.Context, cfg *Config, log *slog.Logger, ring *logRing, up chan<- started) error {
	pv, err := provision(cfg)
	if err != nil {
		return err
	}
	secret, allow := pv.secret, pv.allow
	if isDevSecret(secret) {
		log.Warn("POS SECRET IS THE PUBLIC DEVELOPMENT KEY: anyone can forge payment results; set pos.secret_file before taking real money")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	j, err := payment.OpenJournal(filepath.Join(cfg.DataDir, "journal.db"))
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
	ctl, err := listenControl(cfg.Control.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Control.Socket)
	defer ctl.Close() // also closed by the HTTP server's shutdown; twice is harmless
	hw, err := openHardware(cfg, pv.board, log)
	if err != nil {
		refusalBackoff(ctx, newCrashGuard(cfg.DataDir), err, log)
		return err
	}
	defer hw.Close()
	guard := newCrashGuard(cfg.DataDir)
	if crashBackoff(ctx, guard, hw, log) {
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
	svc := payment.NewService(paymentConfig(cfg, log), j, hw, hw, providers...)
	if kp != nil {
		kp.Bind(svc)
	}
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
	startedAt := time.Now()
	api := control.NewServer(svc)
	api.Status = func() any {
		return control.Status{
			POS: svc.POS(), Current: svc.Current(),
			KioskID: cfg.KioskID, Version: version, Board: cfg.Board.Kind,
			POSListen: srv.Addr().String(), POSConnectTo: connectAddrs(srv.Addr()),
			POSStats: posStats(srv.Stats()), UptimeS: int64(time.Since(startedAt).Seconds()),
			KPOSListen: kposAddr, Hardware: hw.state(),
		}
	}
	routes := append(api.Routes(), hardwareRoutes(hw, svc, func() []string { return connectAddrs(srv.Addr()) })...)
	routes = append(routes, control.Route{Pattern: "GET /v1/logs", Handler: logsHandler(ring)})
	mux, patterns := controlMux(routes)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

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
	wg.Add(4)
	go func() { defer wg.Done(); fail("hardware", hw.run(ctx, svc, j)) }()
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
		"pos_listen", srv.Addr().String(), "pos_connect_to", connectAddrs(srv.Addr()))
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
		if err := guard.cleanStop(); err != nil {
			log.Warn("restart record not cleared", "err", err)
		}
		return nil // asked to stop
	}
	return cause
}

// crashBackoff records this start and, in a crash loop, waits with the
// fault pattern on the LEDs before anything is started. It reports
// whether the service was asked to stop meanwhile.
//
// openHardware has armed the watchdog by then, so the wait feeds it,
// from the same loop that waits: a kioskd that is alive and holding off
// keeps the board up (an unfed wait reset the board in every back-off,
// each reset adding an unclean start, forever), while a back-off that
// hangs still stops the feeding and the board resets. Not arming the
// watchdog until the wait is over would leave a hang here unwatched.
// Asked to stop while waiting, it disarms the watchdog as any clean stop
// does; the supervisor that would otherwise do it never ran.
// refusalBackoff holds off the exit of a kioskd whose board cannot be
// opened (a pin missing from the device tree, no watchdog), past the
// crash guard's threshold: init would start it again every second and
// the console fill with the same refusal. Nothing is open to feed or
// keep safe; the start counts as an unclean one, as it is.
func refusalBackoff(ctx context.Context, guard crashGuard, cause error, log *slog.Logger) {
	n, delay, err := guard.begin(time.Now())
	if err != nil || delay == 0 {
		return
	}
	log.Error("the board cannot be opened: waiting before exiting, so that init does not restart kioskd every second",
		"unclean_starts", n, "window", guard.window, "wait", delay, "err", cause)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func crashBackoff(ctx context.Context, guard crashGuard, hw *hardware, log *slog.Logger) bool {
	n, delay, err := guard.begin(time.Now())
	if err != nil {
		log.Warn("restart record unusable; starting anyway", "err", err)
		return false
	}
	if delay == 0 {
		return false
	}
	every := hw.wdDev.Timeout() / 3
	if every <= 0 {
		every = time.Second
	}
	log.Error("crash loop: waiting before starting", "unclean_starts", n, "window", guard.window, "wait", delay, "watchdog_feed_every", every)
	hw.leds.SetFault("crash-loop", true)
	defer hw.leds.SetFault("crash-loop", false)
	lctx, cancel := context.WithCancel(ctx)
	ledsDone := make(chan struct{})
	go func() { defer close(ledsDone); hw.leds.Run(lctx) }()
	defer func() { cancel(); <-ledsDone }()

	var feedErr error
	feed := func() {
		err := hw.wdDev.Feed()
		switch {
		case err != nil && feedErr == nil:
			log.Warn("watchdog feed failed during the crash-loop wait", "err", err)
		case err == nil && feedErr != nil:
			log.Info("watchdog feed recovered")
		}
		feedErr = err
	}
	feed()
	feeder := time.NewTicker(every)
	defer feeder.Stop()
	wait := time.NewTimer(delay)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := hw.wdDev.Close(); err != nil {
				log.Error("watchdog disarm failed", "err", err)
			} else {
				log.Info("watchdog disarmed")
			}
			return true
		case <-wait.C:
			return false
		case <-feeder.C:
			feed()
		}
	}
}

func paymentConfig(cfg *Config, log *slog.Logger) payment.Config {
	pc := payment.Config{
		VendTimeout:        cfg.Relay.Pulse.Duration + 5*time.Second,
		Timeouts:           map[string]payment.Timeouts{},
		CancelGrace:        cfg.Payment.CancelGrace.Duration,
		ReconnectGrace:     cfg.Payment.ReconnectGrace.Duration,
		IPPAutoSelect:      payment.IPPAutoSelect(cfg.Payment.IPPAutoSelect),
		SuccessAfterCancel: payment.SuccessAfterCancel(cfg.Payment.SuccessAfterCancel),
		Log:                log,
	}
	for mode, t := range cfg.Payment.Timeouts {
		pc.Timeouts[mode] = payment.Timeouts{Ack: t.Ack.Duration, Result: t.Result.Duration, Plan: t.Plan.Duration}
	}
	return pc
}

// listenControl opens the control socket (mode 0660). A socket file left
// by a crash is removed; one that still answers belongs to a running
// kioskd, and starting a second one is refused.
func listenControl(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another kioskd is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// connectAddrs lists the addresses a POS should connect to: the listen
// address itself, or every non-loopback address when listening on all.
func connectAddrs(a net.Addr) []string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return []string{a.String()}
	}
	port := strconv.Itoa(ta.Port)
	if !ta.IP.IsUnspecified() {
		return []string{net.JoinHostPort(ta.IP.String(), port)}
	}
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			out = append(out, net.JoinHostPort(ipn.IP.String(), port))
		}
	}
	if len(out) == 0 {
		out = append(out, net.JoinHostPort("127.0.0.1", port))
	}
	return out
}

func posStats(s *mobypay.Stats) control.POSStats {
	return control.POSStats{
		Sessions: s.Sessions.Load(), Replaced: s.Replaced.Load(), Rejected: s.Rejected.Load(),
		Received: s.Received.Load(), Late: s.Late.Load(), Malformed: s.Malformed.Load(),
		BadSignature: s.BadSig.Load(), Replayed: s.Replayed.Load(), Oversize: s.Oversize.Load(),
		Undecoded: s.Undecoded.Load(), Pending: s.Pending.Load(), Promoted: s.Promoted.Load(),
		Displaced: s.Displaced.Load(), NoNonce: s.NoNonce.Load(), Pings: s.Pings.Load(),
	}
}

// controlMux registers every route of the control API on one mux and
// returns their patterns with it: the one list that docs/control-api.json
// is tested against, in both directions.
func controlMux(routes []control.Route) (*http.ServeMux, []string) {
	mux := http.NewServeMux()
	patterns := make([]string, 0, len(routes))
	for _, r := range routes {
		mux.HandleFunc(r.Pattern, r.Handler)
		patterns = append(patterns, r.Pattern)
	}
	return mux, patterns
}

// logRing is the ring behind `kioskd logs` that serve is given. An alias
// so that serve's signature, which the config and machine moves also
// touch, is not changed by this one too; inline it once they are merged.
type logRing = logsink.Ring

// logsHandler serves the ring; tests that need no log lines run serve
// without one.
func logsHandler(ring *logRing) http.HandlerFunc {
	if ring == nil {
		return control.LogsHandler(nil)
	}
	return control.LogsHandler(ring.Last)
}

// simSink stands in for the relay and the printer on the simulated board:
// it records each vend and receipt in files under data_dir/sim, so a
// person can see what a real machine would have done.
type simSink struct {
	dir         string
	pulse       time.Duration
	log         *slog.Logger
	mu          sync.Mutex
	printerDone chan struct{} // closed when the simulated printer stops
}

func newSimSink(dataDir string, pulse time.Duration, log *slog.Logger) *simSink {
	return &simSink{dir: filepath.Join(dataDir, "sim"), pulse: pulse, log: log.With("component", "sim")}
}

func (s *simSink) appendLine(name, line string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordOn notes that the simulated relay energises (the product drops);
// recordOff that the pulse ended.
func (s *simSink) recordOn(t payment.Txn) error {
	if err := s.appendLine("vends.log", time.Now().Format(time.RFC3339Nano)+" on "+t.ID+" "+t.Amount.String()); err != nil {
		return err
	}
	s.log.Info("relay on (simulated)", "txn_id", t.ID, "pulse", s.pulse)
	return nil
}

func (s *simSink) recordOff(t payment.Txn) {
	if err := s.appendLine("vends.log", time.Now().Format(time.RFC3339Nano)+" off "+t.ID); err != nil {
		s.log.Warn("sim vend log", "err", err)
	}
}
