package kpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// serialChunkReader hands out data in chunk sizes taken from a fuzz input.
type serialChunkReader struct {
	data, sizes []byte
}

func (r *serialChunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[0])%41 + 1
		r.sizes = r.sizes[1:]
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

// serialFrames reads r to the end and describes every result of Next.
func serialFrames(t *testing.T, r io.Reader, limit, inputLen int) []string {
	fr := NewFrameReader(r, limit)
	var out []string
	for calls := 0; ; calls++ {
		if calls > inputLen+2 {
			t.Fatalf("%d calls to Next for %d bytes of input", calls, inputLen)
		}
		data, err := fr.Next()
		switch {
		case err == io.EOF:
			return out
		case err == nil:
			out = append(out, "data "+string(data))
		case errors.Is(err, ErrChecksum), errors.Is(err, ErrFrameTooLong),
			errors.Is(err, ErrFrameTruncated), errors.Is(err, io.ErrUnexpectedEOF):
			out = append(out, "error "+err.Error())
		default:
			t.Fatalf("unclassified error %v", err)
		}
	}
}

func FuzzSerialFrame(f *testing.F) {
	f.Add(AppendFrame([]byte("\x00noise\x03"), []byte(goldenSpaced)), []byte{3, 200, 7}, uint8(255))
	f.Fuzz(func(t *testing.T, stream, chunks []byte, lim uint8) {
		limit := 4 + int(lim)
		whole := serialFrames(t, bytes.NewReader(stream), limit, len(stream))
		// How the bytes are split over reads must not matter.
		split := serialFrames(t, &serialChunkReader{data: stream, sizes: chunks}, limit, len(stream))
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("one read: %q\nchunked:  %q", whole, split)
		}
		for _, r := range whole {
			data, ok := bytes.CutPrefix([]byte(r), []byte("data "))
			if !ok {
				continue
			}
			if len(data)+4 > limit {
				t.Fatalf("%d bytes of data returned under a limit of %d", len(data), limit)
			}
			if bytes.IndexByte(data, serialSTX) >= 0 || bytes.IndexByte(data, serialETX) >= 0 {
				t.Fatalf("data %q holds STX or ETX", data)
			}
			again, err := NewFrameReader(bytes.NewReader(AppendFrame(nil, data)), limit).Next()
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("reframed %q read back as %q, %v", data, again, err)
			}
		}
	})
}

func FuzzSerialNotification(f *testing.F) {
	f.Add([]byte(goldenSpaced))
	f.Add([]byte(goldenZeroed))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseSerialNotification(data)
		if err != nil {
			if !errors.Is(err, ErrSerialData) && !errors.Is(err, ErrSerialResponse) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(data) != SerialNotificationLen || string(data[:4]) != "0025" || serialNonPrintable(data) >= 0 {
			t.Fatalf("accepted %q", data)
		}
		enc, err := n.AppendData(nil)
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", n, err)
		}
		if len(enc) != SerialNotificationLen {
			t.Fatalf("encoded %d bytes", len(enc))
		}
		back, err := ParseSerialNotification(enc)
		if err != nil || back != n {
			t.Fatalf("%+v -> %q -> %+v, %v", n, enc, back, err)
		}
	})
}
