package led

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func lv(p *gpiotest.Pin) bool {
	p.Lock()
	defer p.Unlock()
	return p.L == gpio.High
}

type rig struct {
	g, a, r *gpiotest.Pin
	p       *Panel
}

func newRig() *rig {
	g, a, r := &gpiotest.Pin{N: "GPIO22", L: gpio.High}, &gpiotest.Pin{N: "GPIO23", L: gpio.High}, &gpiotest.Pin{N: "GPIO24", L: gpio.High}
	return &rig{g, a, r, New(Config{Green: g, Amber: a, Red: r, Hold: 3 * time.Second})}
}

// at applies the panel at t and returns the pins.
func (x *rig) at(t time.Time) [3]bool {
	x.p.Apply(t)
	return [3]bool{lv(x.g), lv(x.a), lv(x.r)}
}

var t0 = time.Unix(1795400000, 0) // on a whole second: slow and fast blinks are on

func TestPaymentThroughThePatterns(t *testing.T) {
	x := newRig()
	if got := [3]bool{lv(x.g), lv(x.a), lv(x.r)}; got != [3]bool{} {
		t.Fatalf("not all off at start: %v", got)
	}
	// at is the instant from t0; blink phases count from whole seconds.
	ms := time.Millisecond
	steps := []struct {
		do   func(time.Time)
		at   time.Duration
		want [3]bool
		pat  Pattern
	}{
		{func(time.Time) {}, 0, [3]bool{true, false, false}, Disconnected},
		{func(time.Time) {}, 600 * ms, [3]bool{false, false, false}, Disconnected}, // slow blink, off half
		{func(time.Time) { x.p.SetLink(true) }, 1000 * ms, [3]bool{true, false, false}, Connected},
		{func(time.Time) { x.p.SetPaying(true) }, 1000 * ms, [3]bool{true, true, false}, InProgress},
		{func(time.Time) {}, 1200 * ms, [3]bool{true, false, false}, InProgress}, // fast blink, off half
		{func(now time.Time) { x.p.Outcome(Approved, now) }, 2000 * ms, [3]bool{true, false, false}, Approved},
		{func(time.Time) {}, 2150 * ms, [3]bool{false, false, false}, Approved},
		{func(time.Time) {}, 5000 * ms, [3]bool{true, false, false}, Connected}, // hold over
		{func(now time.Time) { x.p.Outcome(Declined, now) }, 5000 * ms, [3]bool{false, false, true}, Declined},
		{func(time.Time) { x.p.SetFault("printer", true) }, 5000 * ms, [3]bool{false, false, true}, Fault},
		{func(time.Time) {}, 5600 * ms, [3]bool{false, false, false}, Fault},
		{func(time.Time) { x.p.SetFault("printer", false) }, 9000 * ms, [3]bool{true, false, false}, Connected},
		{func(time.Time) { x.p.SetLink(false) }, 9000 * ms, [3]bool{true, false, false}, Disconnected},
		{func(time.Time) { x.p.SetUpdating(true) }, 10000 * ms, [3]bool{false, true, false}, Updating},
		{func(time.Time) {}, 10150 * ms, [3]bool{false, false, false}, Updating}, // fast blink, off half
		{func(time.Time) { x.p.SetFault("printer", true) }, 11000 * ms, [3]bool{false, false, true}, Fault},
		{func(time.Time) { x.p.SetFault("printer", false); x.p.SetUpdating(false) }, 12000 * ms, [3]bool{true, false, false}, Disconnected},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		s.do(now)
		if got := x.at(now); got != s.want || x.p.Pattern(now) != s.pat {
			t.Fatalf("step %d: pins %v pattern %s; want %v %s", i, got, x.p.Pattern(now), s.want, s.pat)
		}
	}
}

func TestActiveLow(t *testing.T) {
	g := &gpiotest.Pin{N: "GPIO22"}
	p := New(Config{Green: g, ActiveLow: true})
	if !lv(g) {
		t.Fatal("active-low LED on at start")
	}
	p.SetLink(true)
	p.Apply(t0)
	if lv(g) {
		t.Fatal("active-low LED not driven low when on")
	}
	if s := p.State(t0); !s.Green || s.Pattern != Connected {
		t.Fatalf("state %+v", s)
	}
}
