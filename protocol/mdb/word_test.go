package mdb

import (
	"bytes"
	"errors"
	"testing"
)

func TestAppendCommandParse(t *testing.T) {
	// Vend Request for 150 units, item 7, to cashless #1: 13 00 00 96 00 07.
	w := AppendCommand(nil, 0x13, []byte{0x00, 0x00, 0x96, 0x00, 0x07})
	want := []Word{0x113, 0x00, 0x00, 0x96, 0x00, 0x07, 0xB0}
	if !equalWords(w, want) {
		t.Fatalf("AppendCommand = %03x, want %03x", w, want)
	}
	var c Command
	if err := ParseCommand(&c, w); err != nil {
		t.Fatal(err)
	}
	if c.Address() != 0x10 || c.Code() != 3 || !bytes.Equal(c.Data(), []byte{0, 0, 0x96, 0, 7}) {
		t.Fatalf("parsed %#x %d % x", c.Address(), c.Code(), c.Data())
	}
}

func TestAppendReply(t *testing.T) {
	// The standard's multi-message example: Vend Denied, Malfunction 07h,
	// Session Cancel Request, checksum 1Bh with the mode bit.
	w := AppendReply(nil, []byte{0x06, 0x0A, 0x07, 0x04})
	want := []Word{0x06, 0x0A, 0x07, 0x04, 0x11B}
	if !equalWords(w, want) {
		t.Fatalf("AppendReply = %03x, want %03x", w, want)
	}
	if got := AppendReply(nil, nil); !equalWords(got, []Word{0x100}) {
		t.Fatalf("empty reply = %03x, want a bare ACK", got)
	}
	var r Reply
	if err := ParseReply(&r, w); err != nil || r.Kind != ReplyData || !bytes.Equal(r.Data(), []byte{6, 0x0A, 7, 4}) {
		t.Fatalf("ParseReply = %v %v % x", err, r.Kind, r.Data())
	}
}

func TestParseCommandErrors(t *testing.T) {
	long := AppendCommand(nil, 0x17, make([]byte, 35))
	for _, tc := range []struct {
		name string
		in   []Word
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"too long", long, ErrTooLong},
		{"address only", []Word{0x112}, ErrShort},
		{"bad checksum", []Word{0x112, 0x13}, ErrChecksum},
		{"no mode bit first", []Word{0x12, 0x12}, ErrFraming},
		{"mode bit inside", []Word{0x113, 0x101, 0x14}, ErrFraming},
		{"wide word", []Word{0x212, 0x12}, ErrBadWord},
		{"poll", []Word{0x112, 0x12}, nil},
		{"longest", AppendCommand(nil, 0x17, make([]byte, 34)), nil},
	} {
		var c Command
		if err := ParseCommand(&c, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseReplyKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Word
		kind ReplyKind
		want error
	}{
		{"silence", nil, ReplyNone, nil},
		{"ack", []Word{0x100}, ReplyACK, nil},
		{"nak", []Word{0x1FF}, ReplyNAK, nil},
		{"unmarked ack", []Word{0x000}, ReplyNone, ErrFraming},
		{"lone other byte", []Word{0x105}, ReplyNone, ErrShort},
		{"just reset", []Word{0x00, 0x100}, ReplyData, nil},
		{"bad checksum", []Word{0x05, 0x100}, ReplyNone, ErrChecksum},
		{"mark inside", []Word{0x105, 0x105}, ReplyNone, ErrFraming},
		{"too long", make([]Word, 37), ReplyNone, ErrTooLong},
	} {
		var r Reply
		err := ParseReply(&r, tc.in)
		if !errors.Is(err, tc.want) || r.Kind != tc.kind {
			t.Errorf("%s: %v %v, want %v %v", tc.name, r.Kind, err, tc.kind, tc.want)
		}
	}
}

func equalWords(a, b []Word) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wordsOf turns fuzz bytes into words, two bytes a word, so that the
// fuzzer reaches every 16-bit value including the invalid wide ones.
func wordsOf(b []byte) []Word {
	w := make([]Word, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		w = append(w, Word(b[i])<<8|Word(b[i+1]))
	}
	return w
}

func bytesOf(w []Word) []byte {
	b := make([]byte, 0, 2*len(w))
	for _, x := range w {
		b = append(b, byte(x>>8), byte(x))
	}
	return b
}

func FuzzParseCommand(f *testing.F) {
	f.Add(bytesOf(AppendCommand(nil, 0x12, nil)))
	f.Add(bytesOf(AppendCommand(nil, 0x13, []byte{0, 0, 0x96, 0, 7})))
	f.Add(bytesOf([]Word{0x112, 0x13}))
	f.Fuzz(func(t *testing.T, b []byte) {
		words := wordsOf(b)
		var c Command
		if err := ParseCommand(&c, words); err != nil {
			return
		}
		// What parses re-encodes to the same words.
		again := AppendCommand(nil, c.AddrCmd, c.Data())
		if !equalWords(again, words) {
			t.Fatalf("round trip %03x -> %03x", words, again)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(bytesOf(AppendReply(nil, []byte{0x06, 0x0A, 0x07, 0x04})))
	f.Add(bytesOf(AppendACK(nil)))
	f.Add(bytesOf([]Word{0x05, 0x100}))
	f.Fuzz(func(t *testing.T, b []byte) {
		words := wordsOf(b)
		var r Reply
		if err := ParseReply(&r, words); err != nil || r.Kind != ReplyData {
			return
		}
		again := AppendReply(nil, r.Data())
		if !equalWords(again, words) {
			t.Fatalf("round trip %03x -> %03x", words, again)
		}
	})
}
