package mobypay

import (
	"strings"
	"testing"
	"time"
)

func TestRefreshMakesAPayloadLive(t *testing.T) {
	now := time.UnixMilli(1_767_225_600_123)
	in := []byte(`{"type":"transaction_result","amount":2.0,"nonce":"old","timestamp":"1"}`)
	a, err := Refresh(in, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Refresh(in, now)
	if err != nil {
		t.Fatal(err)
	}
	s := string(a)
	if !strings.Contains(s, `"timestamp":"1767225600123"`) || !strings.Contains(s, `"amount":2.0`) || strings.Contains(s, `"old"`) {
		t.Errorf("refreshed: %s", s)
	}
	if string(a) == string(b) {
		t.Error("two refreshes share a nonce")
	}
	// What Refresh makes, Seal signs and Open accepts.
	c := NewCodec([]byte("k"))
	frame, err := c.Seal(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(frame); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`[1]`, `null`, `{"a":`} {
		if _, err := Refresh([]byte(bad), now); err == nil || !strings.HasPrefix(err.Error(), "mobypay: payload") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
