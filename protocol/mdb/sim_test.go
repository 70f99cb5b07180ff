package mdb_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mdb"
)

// TestSimulation runs seeded random schedules of a VMC that follows the
// protocol loosely, a bus that loses, corrupts and repeats, and a payment
// side that answers late or not at all, and checks after every step what
// must always hold:
//
//   - every reply is a well-formed block of at most 36 bytes;
//   - the VMC never receives Vend Approved it can act on twice for one
//     Vend Request, nor one after a reset or with no request;
//   - every vend the payment side was told about ends exactly once
//     (an event, or the payment side's own Deny), and only an approved
//     vend can succeed, fail or be unconfirmed.
func TestSimulation(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	for seed := range uint64(seeds) {
		if err := simulate(seed, 400); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	t.Logf("%d vends, %d approved", simStats.vends, simStats.approved)
	if simStats.approved == 0 {
		t.Fatal("no schedule approved a vend")
	}
}

// simStats shows that the schedules reach the interesting places.
var simStats struct{ vends, approved int }

type simVend struct {
	approved bool // Approve succeeded
	ended    int
}

func simulate(seed uint64, steps int) error {
	rng := rand.New(rand.NewPCG(seed, 0x6d6462))
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	d, err := mdb.New(mdb.Config{Now: clk.Now, Multivend: rng.IntN(2) == 0, AutoSession: rng.IntN(2) == 0,
		MaxResponse: 20 * time.Second})
	if err != nil {
		return err
	}
	vends := map[uint32]*simVend{}
	var pending []uint32 // requested, not yet answered by the payment side

	// The VMC's view. Its own level is fixed per schedule; the level
	// both use is 1 from a reset until its Setup is taken.
	vmcLevel := uint8(1 + rng.IntN(3))
	var (
		level        uint8 = 1
		waiting      bool  // sent a Vend Request, no approval or denial yet
		approvedSeen int   // Vend Approved accepted for the current request
		mustReport   bool  // holds an approval: the next vend command reports it
	)
	var r mdb.Reply
	var trail []string // the last exchanges, for the failure message
	note := func(format string, args ...any) {
		if len(trail) == 80 {
			trail = trail[1:]
		}
		trail = append(trail, fmt.Sprintf(format, args...))
	}
	exchange := func(words []mdb.Word) ([]byte, error) {
		out := d.Handle(words)
		note("  %03x -> %03x (%v)", words, out, d.State())
		if len(out) > mdb.MaxBlock {
			return nil, fmt.Errorf("reply of %d words", len(out))
		}
		if err := mdb.ParseReply(&r, out); err != nil {
			return nil, fmt.Errorf("malformed reply %03x: %w", out, err)
		}
		if r.Kind != mdb.ReplyData {
			return nil, nil
		}
		data := append([]byte(nil), r.Data()...)
		switch f := rng.IntN(10); {
		case f == 0: // NAK: not accepted
			note("  NAK")
			d.Handle([]mdb.Word{mdb.Data(mdb.NAK)})
			return nil, nil
		case f == 1: // nothing: not accepted
			note("  (no handshake)")
			return nil, nil
		case f == 2: // RET: must be the same again
			again := d.Handle([]mdb.Word{mdb.Data(mdb.RET)})
			if len(again) != len(out) {
				return nil, fmt.Errorf("RET answered %03x after %03x", again, out)
			}
		case f == 3: // accepted, ACK lost on the way
			note("  (ACK lost)")
			return data, nil
		}
		note("  ACK")
		d.Handle([]mdb.Word{mdb.Data(mdb.ACK)})
		return data, nil
	}
	// take walks the messages of an accepted reply as a VMC would.
	take := func(data []byte) error {
		for len(data) > 0 {
			n := 1
			switch data[0] {
			case 0x01:
				n = 8
			case 0x03:
				n = 3
				if level >= 2 {
					n = 10
				}
			case 0x05, 0x0F:
				n = 3
			case 0x09:
				n = 30
				if level >= 3 {
					n = 34
				}
			case 0x0A:
				n = 2
			case 0x0B:
				if level >= 2 {
					n = 2
				}
			}
			if n > len(data) {
				return fmt.Errorf("message %02X cut short", data[0])
			}
			switch data[0] {
			case 0x05:
				if !waiting {
					return fmt.Errorf("Vend Approved with no request waiting")
				}
				approvedSeen++
				if approvedSeen > 1 {
					return fmt.Errorf("Vend Approved twice for one request")
				}
				waiting, mustReport = false, true
			case 0x06:
				waiting = false
			case 0x00:
				waiting, mustReport, approvedSeen = false, false, 0
			}
			data = data[n:]
		}
		return nil
	}
	send := func(cmd byte, data ...byte) error {
		words := mdb.AppendCommand(nil, mdb.AddrCashless1|cmd, data)
		if rng.IntN(20) == 0 {
			words[len(words)-1] ^= 0x01 // corrupted: silence, and the VMC repeats
			if out := d.Handle(words); out != nil {
				return fmt.Errorf("answered a corrupted block: %03x", out)
			}
			words[len(words)-1] ^= 0x01
		}
		got, err := exchange(words)
		if err != nil {
			return err
		}
		if rng.IntN(15) == 0 { // the VMC missed the reply and repeats
			if again, err := exchange(words); err != nil {
				return err
			} else if got == nil {
				got = again
			}
		}
		return take(got)
	}
	endVend := func(id uint32, how string) error {
		v := vends[id]
		if v == nil {
			return fmt.Errorf("%s for unknown vend %d", how, id)
		}
		v.ended++
		if v.ended > 1 {
			return fmt.Errorf("vend %d ended twice (%s)", id, how)
		}
		return nil
	}
	drain := func() error {
		for _, e := range d.Events(nil) {
			note("event %+v", e)
			switch e.Kind {
			case mdb.EventVendRequested:
				if vends[e.Vend] != nil {
					return fmt.Errorf("vend %d requested twice", e.Vend)
				}
				vends[e.Vend] = &simVend{}
				pending = append(pending, e.Vend)
			case mdb.EventVendSucceeded, mdb.EventVendFailed, mdb.EventVendUnconfirmed:
				if v := vends[e.Vend]; v == nil || !v.approved {
					return fmt.Errorf("%v for vend %d, never approved", e.Kind, e.Vend)
				}
				if err := endVend(e.Vend, e.Kind.String()); err != nil {
					return err
				}
			case mdb.EventVendCancelled, mdb.EventVendTimedOut:
				if err := endVend(e.Vend, e.Kind.String()); err != nil {
					return err
				}
			}
		}
		return nil
	}

	// initialise is the VMC's sequence after a reset, as faulty as the
	// bus makes it.
	initialise := func() error {
		level = 1
		waiting, mustReport, approvedSeen = false, false, 0
		for _, c := range [][]byte{{0}, {2}, {1, 0x00, vmcLevel, 0, 0, 0}, {7, 0x00}, {7, 0x04, 0, 0, 0, 0x20}, {4, 0x01}} {
			if c[0] == 1 {
				level = vmcLevel
			}
			if err := send(c[0], c[1:]...); err != nil {
				return err
			}
		}
		return nil
	}
	if err := initialise(); err != nil {
		return err
	}
	for step := range steps {
		var err error
		switch k := rng.IntN(100); {
		case k < 3:
			if rng.IntN(4) > 0 {
				err = initialise()
				break
			}
			level = 1
			err = send(0)
			if err == nil {
				// The VMC sees Just Reset on a later poll; its own view
				// starts over now.
				waiting, mustReport, approvedSeen = false, false, 0
			}
		case k < 8:
			level = vmcLevel
			err = send(1, 0x00, vmcLevel, 0, 0, 0)
		case k < 10:
			err = send(7, 0x04, 0, 0, 0, 0x20)
		case k < 14:
			err = send(4, byte(rng.IntN(3)))
		case k < 40:
			if mustReport {
				// A VMC holding an approval dispenses and reports it.
				err = send(3, byte(2+rng.IntN(2)), 0, 1)
				mustReport = false
				break
			}
			err = send(2)
		case k < 50:
			if !waiting && !mustReport {
				err = send(3, 0x00, 0, byte(1+rng.IntN(250)), 0, 1)
				waiting, approvedSeen = true, 0
			}
		case k < 53:
			if waiting {
				err = send(3, 0x01)
			}
		case k < 58:
			if !waiting && !mustReport {
				err = send(3, 0x04)
			}
		case k < 60:
			cmd := byte(rng.IntN(8))
			if cmd == 0 {
				level, waiting, mustReport, approvedSeen = 1, false, false, 0
			}
			if cmd == 2 && mustReport {
				break
			}
			err = send(cmd, byte(rng.IntN(256)))
		case k < 75:
			if len(pending) > 0 {
				i := rng.IntN(len(pending))
				id := pending[i]
				pending = append(pending[:i], pending[i+1:]...)
				if rng.IntN(4) == 0 {
					derr := d.Deny(id)
					note("Deny(%d): %v", id, derr)
					if derr == nil {
						err = endVend(id, "Deny")
					}
				} else {
					aerr := d.Approve(id, 1+rng.Int64N(3))
					note("Approve(%d): %v", id, aerr)
					if aerr == nil {
						vends[id].approved = true
					}
				}
			}
		case k < 80:
			note("CancelSession: %v", d.CancelSession())
		case k < 83:
			note("BeginSession: %v", d.BeginSession(rng.Int64N(1000)-1))
		default:
			adv := time.Duration(rng.IntN(4000)) * time.Millisecond
			clk.Advance(adv)
			note("advance %v", adv)
		}
		if err == nil {
			err = drain()
		}
		if err != nil {
			return fmt.Errorf("step %d: %w\n%s", step, err, strings.Join(trail, "\n"))
		}
	}
	// A final reset ends whatever was going on; then every vend must
	// have ended exactly once.
	for _, id := range pending {
		if d.Deny(id) == nil {
			if err := endVend(id, "Deny"); err != nil {
				return err
			}
		}
	}
	d.Handle(mdb.AppendCommand(nil, 0x10, nil))
	if err := drain(); err != nil {
		return err
	}
	approved := 0
	for id, v := range vends {
		if v.ended != 1 {
			return fmt.Errorf("vend %d ended %d times", id, v.ended)
		}
		if v.approved {
			approved++
		}
	}
	simStats.vends += len(vends)
	simStats.approved += approved
	return nil
}
