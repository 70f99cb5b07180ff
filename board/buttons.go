package board

import "periph.io/x/conn/v3/gpio"

// Button is one price button's input: its config name, for messages,
// and its pin, named as the board's other pins are (a BCM name on the
// Pis, a line name or CHIP:OFFSET on generic). Its pins resolve in Open
// with the relay's and the LEDs', so a button whose pin does not exist
// refuses the start as they do.
type Button struct{ Name, Pin string }

// Role is how messages name the button's pin: "button coffee".
func (b Button) Role() string { return "button " + b.Name }

// InputDriver is what a simulated board's Sidecar adds for its inputs:
// something outside the board (`kioskd sim press`) sets the level a
// button's pin reads. Real boards have none; a person presses the
// button.
type InputDriver interface {
	// DriveInput sets the level the named pin reads from now on.
	DriveInput(pin string, l gpio.Level) error
}

// WithButtons adds price buttons' inputs to the pins Open resolves. They
// are not part of a Profile: no kind has buttons of its own, and a
// profile stays a comparable value.
func WithButtons(bs []Button) Option { return func(o *Options) { o.Buttons = bs } }
