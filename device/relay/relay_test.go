package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func level(p *gpiotest.Pin) gpio.Level {
	p.Lock()
	defer p.Unlock()
	return p.L
}

func TestActiveLowSafeStateAndPulse(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", L: gpio.Low} // a relay board would be ON at low
	r, err := New(Config{Pin: pin, ActiveLow: true, Pulse: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if level(pin) != gpio.High {
		t.Fatal("active-low relay not released (high) at start")
	}
	done := make(chan error, 1)
	go func() { done <- r.Pulse(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pulse did not end")
	}
	if level(pin) != gpio.High || r.State().Pulses != 1 || r.State().On {
		t.Fatalf("after pulse: level %v state %+v", level(pin), r.State())
	}
}

// watchedPin reports every level written to it.
type watchedPin struct {
	*gpiotest.Pin
	outs chan gpio.Level
}

func (p watchedPin) Out(l gpio.Level) error {
	err := p.Pin.Out(l)
	p.outs <- l
	return err
}

func TestPulseCutShortStillReleases(t *testing.T) {
	pin := watchedPin{&gpiotest.Pin{N: "GPIO17"}, make(chan gpio.Level, 8)}
	r, err := New(Config{Pin: pin, Pulse: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	<-pin.outs // safe state at start
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Pulse(ctx) }()
	select {
	case l := <-pin.outs:
		if l != gpio.High {
			t.Fatalf("pulse wrote %v", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay never energised")
	}
	// Status is readable while the coil is on.
	if s := r.State(); !s.On || s.Pulses != 1 {
		t.Fatalf("during pulse: %+v", s)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cut short: %v", err)
	}
	if level(pin.Pin) != gpio.Low || r.State().Pulses != 1 || r.State().On {
		t.Fatalf("after cut: %v %+v", level(pin.Pin), r.State())
	}
}

func TestDropSensor(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17"}
	sense := &gpiotest.Pin{N: "GPIO27", EdgesChan: make(chan gpio.Level, 1)}
	r, err := New(Config{Pin: pin, Pulse: 10 * time.Millisecond, Sense: sense, SenseWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sense.EdgesChan <- gpio.Low // the product breaks the beam
	if err := r.Pulse(context.Background()); err != nil {
		t.Fatalf("sensed dispense: %v", err)
	}
	if err := r.Pulse(context.Background()); !errors.Is(err, ErrNoDispense) {
		t.Fatalf("nothing sensed: %v", err)
	}
	if s := r.State(); s.Pulses != 2 || s.LastError == "" {
		t.Fatalf("state %+v", s)
	}
}
