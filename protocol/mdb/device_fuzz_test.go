package mdb

import "testing"

// FuzzHandle feeds the device whatever words come, as a noisy bus would:
// it must never panic, never send more than a block, and keep its reply
// well formed.
func FuzzHandle(f *testing.F) {
	f.Add(bytesOf(AppendCommand(nil, 0x10, nil)))
	f.Add(bytesOf(AppendCommand(nil, 0x11, []byte{0, 3, 0, 0, 0})))
	f.Add(bytesOf(AppendCommand(nil, 0x13, []byte{0, 0, 0x96, 0, 7})))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := New(Config{AutoSession: true})
		if err != nil {
			t.Fatal(err)
		}
		// Units are cut at every marked word, as a transport would.
		words := wordsOf(b)
		for len(words) > 0 {
			n := 1
			for n < len(words) && !words[n].Mode() {
				n++
			}
			reply := d.Handle(words[:n])
			words = words[n:]
			if len(reply) > MaxBlock {
				t.Fatalf("reply of %d words", len(reply))
			}
			var r Reply
			if err := ParseReply(&r, reply); err != nil {
				t.Fatalf("malformed reply %03x: %v", reply, err)
			}
		}
	})
}
