package main

// The fleet: the shipper's wiring in the daemon, and the operator's
// kioskd fleet watch and kioskd fleet audit.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/fleet"
	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/machine"
	"github.com/kioskd/kioskd/payment"
)

// startFleet builds the shipper over the journal and has every journal
// write wake it. The status it publishes is read from the service and
// the machine, as `kioskd status` reads them.
func startFleet(cfg *config.Config, j *payment.Journal, svc *payment.Service, hw *machine.Machine, upd *machine.Updater, log *slog.Logger) (*fleet.Shipper, error) {
	reviews := &reviewCount{j: j}
	sh, err := fleet.New(cfg.FleetConfig(version, log.With("component", "fleet")), j, func() fleet.Status {
		st := fleetStatus(svc, hw, reviews)
		if f := upd.State().LastFailed; f != nil {
			st.UpdateFailed = &fleet.UpdateFailed{Version: f.Version, At: f.At, From: f.From}
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	j.OnWrite(func() {
		sh.Notify()
		reviews.dirty.Store(true)
	})
	return sh, nil
}

// fleetState is the shipper's part of `kioskd status`; nil when off.
func fleetState(cfg *config.Config, sh *fleet.Shipper) *control.Fleet {
	if sh == nil {
		return nil
	}
	st := sh.Stats()
	return &control.Fleet{Broker: cfg.Fleet.Broker, Connected: st.Connected, ShippedSeq: st.ShippedSeq, SeenSeq: st.SeenSeq,
		Lag: st.Lag, Refused: st.Refused, LastError: st.LastError, LastErrorAt: st.LastErrorAt}
}

func fleetStatus(svc *payment.Service, hw *machine.Machine, reviews *reviewCount) fleet.Status {
	hs := hw.State()
	var s fleet.Status
	var pos []string
	for _, p := range svc.POS() {
		pos = append(pos, p.Provider+":"+p.State)
	}
	s.POS = strings.Join(pos, " ")
	if hs.Printer != nil {
		s.Printer = hs.Printer.State
	}
	switch wd := hs.Watchdog; {
	case wd.Stalled != "":
		s.Watchdog = "stalled: " + wd.Stalled
	case wd.Feeding:
		s.Watchdog = "fed"
	default:
		s.Watchdog = "not fed"
	}
	for f := range hs.Faults {
		s.Faults = append(s.Faults, f)
	}
	slices.Sort(s.Faults)
	if hs.Disk != nil {
		mib := hs.Disk.FreeBytes >> 20
		s.DiskFreeMiB = &mib
	}
	s.PendingReviews = reviews.count()
	return s
}

// reviewCount is the number of payments waiting for an operator, for
// the published status. Counting walks the journal, and the shipper asks
// for its status every second: the count is taken again only after a
// journal write, and at most every reviewRecount.
type reviewCount struct {
	j     *payment.Journal
	dirty atomic.Bool

	mu   sync.Mutex
	n    int
	at   time.Time
	once bool
}

const reviewRecount = 10 * time.Second

func (r *reviewCount) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.once && (!r.dirty.Load() || time.Since(r.at) < reviewRecount) {
		return r.n
	}
	r.dirty.Store(false)
	if list, err := r.j.Reviews(false); err == nil {
		r.n = len(list)
	}
	r.at, r.once = time.Now(), true
	return r.n
}

// brokerFlags are how the operator's commands find the broker: its
// [fleet] section in a kioskd config, or flags, which win.
type brokerFlags struct {
	config                                                string
	broker, caFile, certFile, keyFile, user, passwordFile string
}

func (b *brokerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.config, "config", "", "take the broker and its credentials from this kioskd config's [fleet]")
	fs.StringVar(&b.broker, "broker", "", "the broker, mqtt://host:port or mqtts://host:port")
	fs.StringVar(&b.caFile, "ca-file", "", "mqtts: PEM roots for the broker's certificate")
	fs.StringVar(&b.certFile, "cert-file", "", "mqtts: client certificate (PEM), with -key-file")
	fs.StringVar(&b.keyFile, "key-file", "", "mqtts: the client certificate's key")
	fs.StringVar(&b.user, "username", "", "username, with -password-file")
	fs.StringVar(&b.passwordFile, "password-file", "", "the password, alone on one line")
}

// resolve is the fleet config the flags name; the operator's tools need
// no kiosk_id.
func (b *brokerFlags) resolve() (fleet.Config, error) {
	var fc fleet.Config
	if b.config != "" {
		cfg, err := config.Load(b.config)
		if err != nil {
			return fc, err
		}
		fc = cfg.FleetConfig(version, nil)
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&fc.Broker, b.broker}, {&fc.CAFile, b.caFile}, {&fc.CertFile, b.certFile}, {&fc.KeyFile, b.keyFile},
		{&fc.Username, b.user}, {&fc.PasswordFile, b.passwordFile}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	if fc.Broker == "" {
		return fc, errors.New("no broker: give -broker URL or -config FILE")
	}
	return fc, nil
}

func (b *brokerFlags) start(e *cli.Env, fs *flag.FlagSet, args []string) (fleet.Config, int, bool) {
	b.register(fs)
	if code, ok := e.Parse(fs, args, 0, 0); !ok {
		return fleet.Config{}, code, false
	}
	fc, err := b.resolve()
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return fc, exitUsage, false
	}
	fc.Log = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return fc, 0, true
}

// cmdFleetWatch prints every kiosk's events and statuses as they come,
// until SIGINT or SIGTERM.
func cmdFleetWatch(e *cli.Env, args []string) int {
	fs := e.Flags()
	var bf brokerFlags
	fc, code, ok := bf.start(e, fs, args)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := fleet.Watch(ctx, fc, e.Stdout); err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	return exitOK
}

// cmdFleetAudit listens for -window and reports per kiosk what arrived:
// exit 0 when no kiosk shows a gap or a conflicting duplicate, 1 when one
// does, so that a cron job can alert on it.
func cmdFleetAudit(e *cli.Env, args []string) int {
	fs := e.Flags()
	window := fs.Duration("window", time.Minute, "how long to listen")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var bf brokerFlags
	fc, code, ok := bf.start(e, fs, args)
	if !ok {
		return code
	}
	if *window <= 0 {
		fs.Usage()
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := fleet.Audit(ctx, fc, *window)
	if err != nil {
		fmt.Fprintf(e.Stderr, "kioskd: %v\n", err)
		return exitFail
	}
	if *asJSON {
		json.NewEncoder(e.Stdout).Encode(rep)
	} else {
		rep.WriteText(e.Stdout)
	}
	if !rep.Clean() {
		return exitFail
	}
	return exitOK
}
