package mobypay

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Refresh sets a payload's timestamp to now and its nonce to a new UUID,
// so that a kiosk accepts a captured or hand-written message as a live
// one. Numbers are kept as written (2.0 stays a float for the canonical
// form); the result is for Codec.Seal, which puts keys in canonical order.
func Refresh(payload []byte, now time.Time) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, errorf("payload: %w", err)
	}
	if obj == nil {
		return nil, newError("payload is not a JSON object")
	}
	id, err := uuid.NewRandomFromReader(rand.Reader)
	if err != nil {
		return nil, errorf("nonce: %w", err)
	}
	obj["timestamp"] = strconv.FormatInt(now.UnixMilli(), 10)
	obj["nonce"] = id.String()
	return json.Marshal(obj)
}
