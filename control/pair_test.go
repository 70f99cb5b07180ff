package control

import "testing"

func TestPairText(t *testing.T) {
	for addr, want := range map[string]string{
		"10.0.0.5:8080":  "10.0.0.5",
		"10.0.0.5:9000":  "10.0.0.5:9000",
		"[fd00::1]:8080": "fd00::1",
		"not an address": "not an address",
	} {
		if got := PairText(addr); got != want {
			t.Errorf("PairText(%q) = %q, want %q", addr, got, want)
		}
	}
}
