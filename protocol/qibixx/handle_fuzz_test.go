package qibixx

import (
	"bytes"
	"testing"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// FuzzReaderLines feeds the reader any sequence of lines from the board,
// with the payment side approving where the input says "APPROVE", and
// checks the rule the adapter relies on: every vend is requested once,
// ends once, and ends in an outcome of the VMC's (success, failure,
// unconfirmed) only if it was approved.
func FuzzReaderLines(f *testing.F) {
	for _, s := range []string{
		"c,STATUS,ENABLED\nc,STATUS,VEND,1.50,12\nAPPROVE\nc,VEND,SUCCESS\nc,STATUS,IDLE\nc,STATUS,ENABLED",
		"c,STATUS,VEND,1.50,12\nc,STATUS,IDLE\nAPPROVE\nc,VEND,SUCCESS",
		"c,STATUS,VEND,1.50,12\nAPPROVE\nc,STATUS,IDLE\nc,ERR,VEND 3\nc,STATUS,VEND,2.00,1\nAPPROVE\nc,STATUS,INACTIVE",
		"c,STATUS,VEND,1.005,1\nc,STATUS,VEND,,\nc,VEND,SUCCESS\nc,ERR,VEND 3",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		r.out = make(chan []byte, 4096)
		type life struct{ approved, ended bool }
		vends := map[uint32]*life{}
		var evs []mdb.Event
		check := func() {
			evs = r.Events(evs[:0])
			for _, e := range evs {
				switch e.Kind {
				case mdb.EventVendRequested:
					if vends[e.Vend] != nil {
						t.Fatalf("vend %d requested twice", e.Vend)
					}
					vends[e.Vend] = &life{}
				case mdb.EventVendCancelled, mdb.EventVendTimedOut, mdb.EventVendSucceeded, mdb.EventVendFailed, mdb.EventVendUnconfirmed:
					v := vends[e.Vend]
					if v == nil || v.ended {
						t.Fatalf("%v for vend %d, not open", e.Kind, e.Vend)
					}
					v.ended = true
					outcome := e.Kind == mdb.EventVendSucceeded || e.Kind == mdb.EventVendFailed || e.Kind == mdb.EventVendUnconfirmed
					if outcome != v.approved {
						t.Fatalf("%v for vend %d, approved %v", e.Kind, e.Vend, v.approved)
					}
				}
			}
		}
		for line := range bytes.SplitSeq(in, []byte{'\n'}) {
			if string(line) == "APPROVE" {
				for id, v := range vends {
					if !v.ended && !v.approved {
						if err := r.Approve(id, 1); err == nil {
							v.approved = true
						}
					}
				}
				continue
			}
			if len(line) > MaxLine {
				line = nil // as readLines delivers an overlong line
			}
			r.handle(line)
			check()
		}
	})
}
