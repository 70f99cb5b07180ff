package main

// The [mdb] reader's trace ring, served as GET /v1/mdb/trace.

import (
	"fmt"

	"github.com/kioskd/kioskd/control"
	devmdb "github.com/kioskd/kioskd/device/mdb"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mdb"
)

// mdbTraceSize is how many exchanges the daemon keeps: at a VMC's usual
// poll every 100 ms, the last minute and a half or so, which holds a
// reset loop's whole cycle; 1024 records are about 250 KB.
const mdbTraceSize = 1024

// OpenMDBTrace is the reader's trace for the control API. The decoding
// happens here, on the stream's goroutine, never on the bus loop's.
func (r *mdbReader) OpenMDBTrace(last int) (control.MDBTraceReader, error) {
	if r.qx != nil {
		return nil, fmt.Errorf("%w: the MDB reader is a Qibixx board (transport qibixx), which answers the bus itself: kioskd sees no bus to trace", payment.ErrNotFound)
	}
	rd, err := r.trace.NewReader(last)
	if err != nil {
		return nil, err
	}
	t := &mdbTraceReader{rd: rd}
	// The Tracer learns the feature levels from Setup Config; the one
	// the ring kept is fed first, so that a stream that starts after it
	// left the ring still splits poll replies at the right lengths.
	if rd.Setup(&t.recs[0]) {
		t.line = t.tr.Append(t.line[:0], t.recs[0].Unit(), t.recs[0].Reply())
	}
	return t, nil
}

// mdbTraceReader is one stream's reader: its own place in the ring and
// its own Tracer.
type mdbTraceReader struct {
	rd   *devmdb.TraceReader
	tr   mdb.Tracer
	recs [32]devmdb.TraceRecord
	line []byte
}

func (t *mdbTraceReader) Ready() <-chan struct{} { return t.rd.Ready() }

func (t *mdbTraceReader) Close() { t.rd.Close() }

func (t *mdbTraceReader) Next(dst []control.MDBExchange) ([]control.MDBExchange, uint64) {
	n, dropped := t.rd.Read(t.recs[:min(len(t.recs), cap(dst)-len(dst))])
	for i := range n {
		rec := &t.recs[i]
		t.line = t.tr.Append(t.line[:0], rec.Unit(), rec.Reply())
		dst = append(dst, control.MDBExchange{
			Time: rec.Time, Unit: hexWords(rec.Unit()), Reply: hexWords(rec.Reply()),
			LatencyUS: rec.Latency.Microseconds(), Gap: rec.Gap, Text: string(t.line),
		})
	}
	return dst, dropped
}

// hexWords is ws as the Tracer writes words: three hex digits, the mode
// bit the leading 1.
func hexWords(ws []mdb.Word) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = fmt.Sprintf("%03X", uint16(w))
	}
	return out
}
