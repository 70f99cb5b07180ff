package config

import "testing"

// FuzzParse feeds arbitrary files to the parser an operator's hand edits
// reach: it must refuse or accept, never panic, and what it accepts is
// valid. The seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(Default())
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v", err)
		}
		if _, err := cfg.BoardProfile(); err != nil {
			t.Fatalf("accepted a board kind Lookup refuses: %v", err)
		}
	})
}
