package control

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// Button is one price button in status, and the answer of a simulated
// press (POST /v1/sim/buttons/{name}/press).
type Button struct {
	Name      string    `json:"name"`
	Pin       string    `json:"pin"`
	Price     string    `json:"price"` // RM, "2.00"
	Mode      string    `json:"mode"`
	Provider  string    `json:"provider,omitempty"`
	Pressed   bool      `json:"pressed"` // the debounced level now
	Presses   int       `json:"presses"` // presses that asked for a payment since start
	Ignored   int       `json:"ignored"` // presses while a payment was in progress
	LastPress time.Time `json:"last_press,omitzero"`
	LastTxn   string    `json:"last_txn,omitempty"` // the payment the last counted press started
	LastError string    `json:"last_error,omitempty"`
}

// SimPress is POST /v1/sim/buttons/{name}/press: a simulated board's
// button pressed and released; it answers once the button is back up.
func (c *Client) SimPress(ctx context.Context, name string) (Button, error) {
	var b Button
	err := c.post(ctx, "/v1/sim/buttons/"+url.PathEscape(name)+"/press", nil, &b)
	return b, err
}

// Text is the button's line in kioskd status.
func (b Button) Text() string {
	level := "released"
	if b.Pressed {
		level = "PRESSED"
	}
	s := fmt.Sprintf("button %s on %s: RM %s %s, %s; %d presses, %d ignored", b.Name, b.Pin, b.Price, b.Mode, level, b.Presses, b.Ignored)
	if !b.LastPress.IsZero() {
		s += ", last " + b.LastPress.Format(time.RFC3339)
		if b.LastTxn != "" {
			s += " " + b.LastTxn
		}
		if b.LastError != "" {
			s += " (no payment: " + b.LastError + ")"
		}
	}
	return s
}
