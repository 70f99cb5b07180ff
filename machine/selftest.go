package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/device/relay"
	"github.com/kioskd/kioskd/payment"
)

// selftest exercises each device. The relay is pulsed only when asked,
// and never while a payment is in progress: a selftest must not hand out
// a product someone is paying for.
func (m *Machine) selftest(ctx context.Context, svc *payment.Service, pulse bool) []control.Check {
	var out []control.Check
	add := func(name string, err error, okDetail string) {
		c := control.Check{Name: name, OK: err == nil, Detail: okDetail}
		if err != nil {
			c.Detail = err.Error()
		}
		out = append(out, c)
	}
	add("leds", m.leds.Cycle(ctx, 300*time.Millisecond), "green, amber, red, all, none")
	switch {
	case !pulse:
		out = append(out, control.Check{Name: "relay", OK: true, Detail: "not pulsed (use -relay)"})
	case svc.Current() != nil:
		add("relay", errors.New("a payment is in progress; not pulsing"), "")
	case m.pulses:
		// One coin pulse, as a vend would give it (a long `pulse` is not
		// what a coin-op machine counts): the machine shows one credit.
		_, err := m.relay.Train(ctx, 1, m.on, m.off, relay.TrainHooks{})
		add("relay", err, fmt.Sprintf("one coin pulse of %s; %d pulses since start", m.on, m.relay.State().Pulses))
	default:
		err := m.relay.Pulse(ctx)
		add("relay", err, fmt.Sprintf("pulsed; %d pulses since start", m.relay.State().Pulses))
	}
	add("printer", m.testPage(ctx), "test page printed")
	add("watchdog", m.wd.Check(), fmt.Sprintf("%s fed, timeout %s", m.wd.Status().Device, m.wdDev.Timeout()))
	return out
}

// Routes are the maintenance endpoints of the control API that need the
// devices: POST /v1/selftest (?relay=1 also pulses the relay) and POST
// /v1/pair/print, the pairing slip for the addresses posAddrs gives when
// asked (the POS listener's, known only once it listens).
func (m *Machine) Routes(svc *payment.Service, posAddrs func() []string) []control.Route {
	return append([]control.Route{
		{Pattern: "POST /v1/selftest", Handler: func(w http.ResponseWriter, r *http.Request) {
			res := m.selftest(r.Context(), svc, r.URL.Query().Get("relay") == "1")
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(res)
		}},
		{Pattern: "POST /v1/pair/print", Handler: func(w http.ResponseWriter, r *http.Request) {
			addrs := posAddrs()
			err := m.printPairing(r.Context(), addrs)
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(control.Error{Error: err.Error()})
				return
			}
			json.NewEncoder(w).Encode(control.PairPrinted{Printed: addrs})
		}},
	}, m.simPressRoute()...)
}
