package mobypay

import (
	"encoding/json"
	"testing"
)

// FuzzIsPing checks the keepalive test against a plain reading of the
// rule: a JSON object whose "type", or whose payload's "type", is the
// string "ping". Anything else, however close, is not a keepalive (and so
// is judged, and counted, as a refused frame).
func FuzzIsPing(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`, `{"payload":{"type":"ping"}}`, `{"payload":{"type":"ping"},"signature":"00"}`,
		`{"type":"PING"}`, `{"type":" ping"}`, `{"type":["ping"]}`, `{"payload":"ping"}`,
		`{"type":"ping"`, `"ping"`, `[{"type":"ping"}]`, `{"type":"pong","x":"ping"}`,
		`{"type":"\u0070ing"}`, `{"payload":{"type":"ping","txn_id":"TXN1"}}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got := isPing(frame)
		var env struct {
			Type    *string `json:"type"`
			Payload *struct {
				Type *string `json:"type"`
			} `json:"payload"`
		}
		var obj map[string]json.RawMessage
		want := false
		if json.Unmarshal(frame, &obj) == nil && obj != nil {
			// Only plain spellings count: the test looks for the bytes
			// "ping" before it parses, so an escaped spelling is not one.
			if json.Unmarshal(frame, &env) == nil {
				want = env.Type != nil && *env.Type == "ping" && isPingType(obj["type"])
				if !want && env.Payload != nil && env.Payload.Type != nil && *env.Payload.Type == "ping" {
					var p map[string]json.RawMessage
					json.Unmarshal(obj["payload"], &p)
					want = isPingType(p["type"])
				}
			} else if isPingType(obj["type"]) {
				want = true // a payload of another shape does not matter then
			}
		}
		if got != want {
			t.Fatalf("isPing(%q) = %v, want %v", frame, got, want)
		}
	})
}
