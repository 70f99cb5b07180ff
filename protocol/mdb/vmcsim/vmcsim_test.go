package vmcsim

import (
	"errors"
	"testing"
)

func TestSplitByLevel(t *testing.T) {
	// Begin Session, Command Out Of Sequence: their lengths depend on the
	// level both sides use.
	for _, tc := range []struct {
		vmc, reader uint8
		data        []byte
		want        int
	}{
		{1, 3, []byte{0x03, 0xFF, 0xFF, 0x0B, 0x06}, 3},
		{3, 3, []byte{0x03, 0, 10, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0x0B, 0x04, 0x06}, 3},
		{3, 1, []byte{0x0B, 0x05, 0x00, 0x10}, 2},
	} {
		v := &VMC{Level: tc.vmc, ReaderLevel: tc.reader}
		ms, err := v.Split(tc.data)
		if err != nil || len(ms) != tc.want {
			t.Errorf("levels %d/%d: %v, %v; want %d messages", tc.vmc, tc.reader, ms, err, tc.want)
		}
	}
	v := &VMC{Level: 3, ReaderLevel: 3}
	if _, err := v.Split([]byte{0x02, 0x10}); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("display request: %v, want ErrUnknownMessage (not supported)", err)
	}
	if _, err := v.Split([]byte{0x05, 0x00}); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("cut short: %v", err)
	}
}
