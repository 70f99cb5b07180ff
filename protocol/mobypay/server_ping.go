package mobypay

import (
	"bytes"
	"encoding/json"
)

// typePing is the POS app's keepalive. It is sent signed or not, with or
// without a payload envelope; the kiosk never acts on it.
const typePing = "ping"

// isPing reports whether a frame that did not verify is a keepalive: its
// top-level "type" or its payload's "type" is "ping", as the POS app sends
// {"type": "ping"} or {"payload": {"type": "ping"}} unsigned. Only refused
// frames reach it, and the substring test keeps garbage off the decoder.
// Keys match exactly (a map, not a struct, so no case folding).
func isPing(frame []byte) bool {
	if !bytes.Contains(frame, []byte(`"ping"`)) {
		return false
	}
	var env map[string]json.RawMessage
	if json.Unmarshal(frame, &env) != nil {
		return false
	}
	if isPingType(env["type"]) {
		return true
	}
	var payload map[string]json.RawMessage
	if p, ok := env["payload"]; !ok || json.Unmarshal(p, &payload) != nil {
		return false
	}
	return isPingType(payload["type"])
}

func isPingType(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == `"`+typePing+`"`
}
