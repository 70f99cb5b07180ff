package payment

import (
	"strings"
	"testing"
	"time"
)

// Validate names each bad key as the config file spells it, all at once;
// zero durations take NewService's defaults.
func TestConfigValidate(t *testing.T) {
	ok := Config{IPPAutoSelect: IPPSelectSingle, SuccessAfterCancel: AfterCancelVend,
		Timeouts: map[string]Timeouts{"card": {Ack: 15 * time.Second}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	bad := Config{IPPAutoSelect: "sometimes", SuccessAfterCancel: "refund", CancelGrace: time.Hour,
		Timeouts: map[string]Timeouts{"cash": {}, "card": {Result: 2 * time.Hour}}}
	err := bad.Validate()
	for _, want := range []string{`ipp_auto_select "sometimes": want none, single or first`,
		`success_after_cancel "refund": want vend or review`, "cancel_grace 1h0m0s: want 1s to 10m",
		"timeouts.cash: not a payment mode", "timeouts.card.result 2h0m0s: want 1s to 1h"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to say %q", err, want)
		}
	}
	if n := len(unwrapAll(err)); n != 5 {
		t.Errorf("%d errors, want 5, one per bad key", n)
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return nil
}
