package payment

import (
	"encoding/json"
	"testing"
)

// FuzzParseAmount: whatever the controller sends as an amount either is
// refused or survives a round trip through its decimal form unchanged.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.50", "0.01", "1", "1.5", "999999999999.99", "1.234", "-1", "1e3", "", ".", "00.10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAmount(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("ParseAmount(%q) = %d", s, v)
		}
		back, err := ParseAmount(v.String())
		if err != nil || back != v {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, v, v.String(), back, err)
		}
		b, _ := json.Marshal(v)
		var j Sen
		if err := json.Unmarshal(b, &j); err != nil || j != v {
			t.Fatalf("json round trip of %d: %s %d %v", v, b, j, err)
		}
	})
}
