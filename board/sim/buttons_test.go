package sim

import (
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"

	"github.com/kioskd/kioskd/board"
)

// A button's pin resolves with the others, in order, and DriveInput sets
// the level it reads, offering the edge to a waiting reader.
func TestButtonPins(t *testing.T) {
	p, _ := board.Lookup(Kind)
	b, err := board.Open(p, board.WithButtons([]board.Button{{Name: "coffee", Pin: "SIM_BTN_1"}, {Name: "tea", Pin: "SIM_BTN_2"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Sidecar.Close()
	if len(b.Buttons) != 2 || b.Buttons[0].Name() != "SIM_BTN_1" || b.Buttons[1].Name() != "SIM_BTN_2" {
		t.Fatalf("buttons %v", b.Buttons)
	}
	d, ok := b.Sidecar.(board.InputDriver)
	if !ok {
		t.Fatalf("sim sidecar %T drives no inputs", b.Sidecar)
	}
	if err := b.Buttons[1].In(gpio.PullUp, gpio.NoEdge); err != nil {
		t.Fatal(err)
	}
	if err := d.DriveInput("SIM_BTN_2", gpio.Low); err != nil {
		t.Fatal(err)
	}
	if b.Buttons[1].Read() != gpio.Low || len(Pins(b)["SIM_BTN_2"].EdgesChan) != 1 {
		t.Fatal("driven low: not read low with an edge")
	}
	if err := d.DriveInput("NOPE", gpio.Low); err == nil {
		t.Fatal("an unknown pin was driven")
	}
}

// A button on the relay's pin is refused, naming the button.
func TestButtonOnRelayPinRefused(t *testing.T) {
	p, _ := board.Lookup(Kind)
	_, err := board.Open(p, board.WithButtons([]board.Button{{Name: "coffee", Pin: p.Relay}}))
	if err == nil || !strings.Contains(err.Error(), `button coffee pin "SIM_RELAY" is already the relay pin`) {
		t.Fatalf("err %v", err)
	}
}
