package mobypay

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// One large frame, no secret needed, used to leave its parse arrays
// (about 1.7 MB for 64 KiB of zeros) pinned for the connection's life: a
// session plus the pending and draining connections could hold tens of
// MB that way.
func TestServerLargeFrameDoesNotPinParserMemory(t *testing.T) {
	srv, rec := startServer(t, ServerConfig{})
	c := mobypaytest.Dial(t, srv.Addr(), "127.0.0.1")
	awaitState(t, rec, Connected)
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "WARM", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "WARM")
	before := heapInUse()
	zeros := strings.Repeat("0,", (MaxFrame-64)/2)
	mobypaytest.Write(t, c, `{"payload":{"a":[`+zeros+`0]},"signature":"00"}`+"\n")
	// Frames are handled in order: once this one is delivered, the big
	// one has been parsed and refused.
	mobypaytest.Write(t, c, string(posFrame(t, srvSecret, "AFTER", time.Now())))
	awaitMsg(t, rec, TypeAck, StatusProcessing, "AFTER")
	after := heapInUse()
	// The frame reader's buffer may have grown to MaxFrame; nothing else.
	if grown := int64(after) - int64(before); grown > 3*MaxFrame {
		t.Fatalf("live heap grew by %d KiB after one %d KiB frame", grown>>10, MaxFrame>>10)
	}
}
