package mobypay

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// A signed message is decoded whatever its fields hold; what is unexpected
// is described in Odd, and TxnID and AmountText keep the signed text.
func TestDecodeOdd(t *testing.T) {
	const head = `"type":"transaction_result","txn_id":"TXN1","status":"success","nonce":"n","timestamp":"1757492763490"`
	big := "1" + strings.Repeat("0", 400)
	cases := []struct {
		name, payload string
		check         func(t *testing.T, m *Message)
		odd           []string
	}{
		{"clean success", `{` + head + `,"amount":2.0,"transaction_id":"000410","pos_id":"POS001"}`, func(t *testing.T, m *Message) {
			if !m.IsSuccess() || !m.LooksLikeSuccess() || !m.HasAmount || m.Amount != 2 || m.AmountText != "2.0" || m.TransactionID != "000410" {
				t.Errorf("%+v", m)
			}
		}, nil},
		{"amount as a string", `{` + head + `,"amount":"1.00"}`, func(t *testing.T, m *Message) {
			if m.HasAmount || m.Amount != 0 || m.AmountText != `"1.00"` || !m.LooksLikeSuccess() || !m.IsSuccess() {
				t.Errorf("%+v", m)
			}
			if _, ok := m.AmountSen(); ok {
				t.Error("a string amount converts to sen")
			}
		}, []string{`amount is a string "1.00"`}},
		{"amount NaN", `{` + head + `,"amount":NaN}`, amountText("NaN"), []string{"amount is NaN"}},
		{"amount Infinity", `{` + head + `,"amount":Infinity}`, amountText("Infinity"), []string{"amount is Infinity"}},
		{"amount -Infinity", `{` + head + `,"amount":-Infinity}`, amountText("-Infinity"), []string{"amount is -Infinity"}},
		{"amount 1e400", `{` + head + `,"amount":1e400}`, amountText("Infinity"), []string{"amount is Infinity"}},
		{"amount -1e400", `{` + head + `,"amount":-1E+400}`, amountText("-Infinity"), []string{"amount is -Infinity"}},
		{"amount a huge integer", `{` + head + `,"amount":` + big + `}`, amountText(big),
			[]string{"amount is a number " + big[:37] + "... beyond the double range"}},
		{"amount negative", `{` + head + `,"amount":-1.00}`, func(t *testing.T, m *Message) {
			if sen, ok := m.AmountSen(); !ok || sen != -100 || m.AmountText != "-1.0" {
				t.Errorf("%+v: %d sen, %v", m, sen, ok)
			}
		}, nil},
		{"amount integer", `{` + head + `,"amount":2}`, amountText("2"), nil},
		{"amount null", `{` + head + `,"amount":null}`, amountText("null"), nil},
		{"amount boolean", `{` + head + `,"amount":true}`, amountText("true"), []string{"amount is a boolean true"}},
		{"amount object", `{` + head + `,"amount":{"value":"1.00","currency":"MYR"}}`,
			amountText(`{"currency":"MYR","value":"1.00"}`), []string{"amount is an object"}},
		{"amount array", `{` + head + `,"amount":[1]}`, amountText("[1]"), []string{"amount is an array"}},
		{"plans an object", `{` + head + `,"plans":{"planId":"x"}}`, func(t *testing.T, m *Message) {
			if m.Plans != nil {
				t.Errorf("plans %+v", m.Plans)
			}
		}, []string{"plans is not an array"}},
		{"plans a string", `{` + head + `,"plans":"x"}`, nil, []string{"plans is not an array"}},
		{"plans mixed", `{` + head + `,"plans":[1,{"planId":"a"},{"frequency":""},{"planId":{}},{"planId":7,"totalInstallments":6.0},` +
			`{"planId":"b","totalInstallments":6.5},{"planId":"c","totalInstallments":"6"},{"planId":"d","frequency":"monthly","totalInstallments":99999999999999999999},{"planId":"e","frequency":3},null]}`,
			func(t *testing.T, m *Message) {
				var ids []string
				for _, p := range m.Plans {
					ids = append(ids, p.ID)
				}
				if !slices.Equal(ids, []string{"a", "7", "b", "c", "d", "e"}) || m.Plans[1].TotalInstallments != 6 || m.Plans[2].TotalInstallments != 0 || m.Plans[4].Frequency != "monthly" || m.Plans[5].Frequency != "" {
					t.Errorf("plans %+v", m.Plans)
				}
			}, []string{"plan 0 is not an object", "plan 2 without planId", "plan 3 planId is an object",
				"plan 5 totalInstallments is a number 6.5", `plan 6 totalInstallments is a string "6"`,
				"plan 7 totalInstallments is a number 99999999999999999999", "plan 8 frequency is a number 3", "plan 9 is not an object"}},
		{"transaction_id an object", `{` + head + `,"transaction_id":{"id":"000410"}}`, func(t *testing.T, m *Message) {
			if m.TransactionID != "" || !m.LooksLikeSuccess() {
				t.Errorf("%+v", m)
			}
		}, []string{"transaction_id is an object"}},
		{"transaction_id a number", `{` + head + `,"transaction_id":410}`, func(t *testing.T, m *Message) {
			if m.TransactionID != "410" {
				t.Errorf("%+v", m)
			}
		}, nil},
		{"nonce empty", `{"type":"ack","status":"processing","txn_id":"TXN1","nonce":"","timestamp":"1"}`, func(t *testing.T, m *Message) {
			if m.Nonce != "" || m.Type != TypeAck {
				t.Errorf("%+v", m)
			}
		}, []string{"no nonce"}},
		{"nonce missing", `{"type":"ack","status":"processing","txn_id":"TXN1","timestamp":"1"}`, nil, []string{"no nonce"}},
		{"nonce null", `{"type":"ack","txn_id":"TXN1","nonce":null,"timestamp":"1"}`, nil, []string{"no nonce"}},
		{"nonce an object", `{"type":"ack","txn_id":"TXN1","nonce":{},"timestamp":"1"}`, nil, []string{"nonce is an object"}},
		{"nonce a number", `{"type":"ack","txn_id":"TXN1","nonce":12345,"timestamp":"1"}`, func(t *testing.T, m *Message) {
			if m.Nonce != "12345" {
				t.Errorf("%+v", m)
			}
		}, nil},
		{"status in upper case", `{"type":"transaction_result","txn_id":"TXN1","status":"SUCCESS","nonce":"n","timestamp":"1","amount":2.0}`, func(t *testing.T, m *Message) {
			if m.IsSuccess() || !m.LooksLikeSuccess() || m.Status != "SUCCESS" {
				t.Errorf("%+v", m)
			}
		}, []string{`status "SUCCESS" differs from "success" in case`}},
		{"status Approved", `{"type":"transaction_result","txn_id":"TXN1","status":"Approved","nonce":"n","timestamp":"1"}`, looksLikeSuccess(true),
			[]string{`status "Approved" differs from "approved" in case`}},
		{"type in upper case", `{"type":"TRANSACTION_RESULT","txn_id":"TXN1","status":"success","nonce":"n","timestamp":"1"}`, looksLikeSuccess(true),
			[]string{`type "TRANSACTION_RESULT" differs from "transaction_result" in case`}},
		{"status unsuccessful", `{"type":"transaction_result","txn_id":"TXN1","status":"unsuccessful","nonce":"n","timestamp":"1"}`, looksLikeSuccess(false), nil},
		// U+017F folds to 's' in Unicode, not in ASCII.
		{"status with a long s", `{"type":"transaction_result","txn_id":"TXN1","status":"\u017fuccess","nonce":"n","timestamp":"1"}`, looksLikeSuccess(false), nil},
		{"no type", `{"txn_id":"x","nonce":"n","timestamp":"1"}`, nil, []string{"no type"}},
		{"type empty", `{"type":"","nonce":"n","timestamp":"1"}`, nil, []string{"no type"}},
		{"type a number", `{"type":5,"nonce":"n","timestamp":"1"}`, func(t *testing.T, m *Message) {
			if m.Type != "" {
				t.Errorf("%+v", m)
			}
		}, []string{"type is a number 5"}},
		{"status a number", `{"type":"ack","status":1,"nonce":"n","timestamp":"1"}`, nil, []string{"status is a number 1"}},
		{"payment_mode a number", `{"type":"ack","payment_mode":1.5,"nonce":"n","timestamp":"1"}`, nil, []string{"payment_mode is a number 1.5"}},
		{"type an array", `{"type":["ack"],"nonce":"n","timestamp":"1"}`, nil, []string{"type is an array"}},
		{"type a boolean", `{"type":false,"nonce":"n","timestamp":"1"}`, nil, []string{"type is a boolean false"}},
		{"no timestamp", `{"type":"ping","nonce":"n"}`, nil, []string{"no timestamp"}},
		{"numeric timestamp", `{"type":"ping","nonce":"n","timestamp":1757492763490}`, func(t *testing.T, m *Message) {
			if m.Timestamp != "1757492763490" {
				t.Errorf("%+v", m)
			}
		}, nil},
		{"empty payload", `{}`, nil, []string{"no type", "no nonce", "no timestamp"}},
		{"several at once", `{"type":"transaction_result","status":"SUCCESS","amount":NaN,"transaction_id":[],"plans":{},"txn_id":"T"}`, nil,
			[]string{"amount is NaN", "plans is not an array", "transaction_id is an array", "no nonce", "no timestamp",
				`status "SUCCESS" differs from "success" in case`}},
		{"long string excerpted", `{` + head + `,"amount":"` + strings.Repeat("9", 100) + `"}`, nil,
			[]string{`amount is a string "` + strings.Repeat("9", 36) + "..."}},
		{"error message a number", `{"type":"error","nonce":"n","timestamp":"1","message":404,"pos_id":null}`, func(t *testing.T, m *Message) {
			if m.Text != "404" || m.PosID != "" {
				t.Errorf("%+v", m)
			}
		}, nil},
	}
	// txn_id is text whatever its type, so that ids compare as text.
	for _, tc := range []struct{ json, text, odd string }{
		{`"TXN1"`, "TXN1", ""},
		{`"TXN\u00e9\n"`, "TXN\u00e9\n", ""},
		{`1757482355464`, "1757482355464", ""},
		{`-0`, "0", ""},
		{`1.5E3`, "1500.0", ""},
		{`null`, "", ""},
		{`true`, "true", "txn_id is a boolean true"},
		{`{"b":[1, 2],"a":"x"}`, `{"a":"x","b":[1,2]}`, "txn_id is an object"},
		{`["TXN1"]`, `["TXN1"]`, "txn_id is an array"},
		{`NaN`, "NaN", "txn_id is NaN"},
		{`1e400`, "Infinity", "txn_id is Infinity"},
	} {
		var odd []string
		if tc.odd != "" {
			odd = []string{tc.odd}
		}
		want := tc.text
		cases = append(cases, struct {
			name, payload string
			check         func(t *testing.T, m *Message)
			odd           []string
		}{"txn_id " + tc.json, `{"type":"ack","nonce":"n","timestamp":"1","txn_id":` + tc.json + `}`, func(t *testing.T, m *Message) {
			if m.TxnID != want {
				t.Errorf("TxnID %q, want %q", m.TxnID, want)
			}
		}, odd})
	}

	c := NewCodec([]byte("k"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire, err := c.Seal(nil, []byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Open(bytes.TrimSuffix(wire, []byte("\n"))); err != nil {
				t.Fatal(err)
			}
			var m Message
			if err := c.Decode(&m); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !slices.Equal(m.Odd, tc.odd) {
				t.Errorf("Odd %q\n want %q", m.Odd, tc.odd)
			}
			if m.Clean() != (len(tc.odd) == 0) {
				t.Errorf("Clean() = %v", m.Clean())
			}
			if m.Payload != string(c.Canonical()) {
				t.Errorf("payload %s", m.Payload)
			}
			if m.HasAmount && (math.IsNaN(m.Amount) || math.IsInf(m.Amount, 0)) {
				t.Errorf("HasAmount with %v", m.Amount)
			}
			if tc.check != nil {
				tc.check(t, &m)
			}
		})
	}
}

func amountText(want string) func(t *testing.T, m *Message) {
	return func(t *testing.T, m *Message) {
		t.Helper()
		if m.AmountText != want {
			t.Errorf("AmountText %q, want %q", m.AmountText, want)
		}
		if _, ok := m.AmountSen(); ok != m.HasAmount {
			t.Errorf("AmountSen ok %v, HasAmount %v", ok, m.HasAmount)
		}
	}
}

func looksLikeSuccess(want bool) func(t *testing.T, m *Message) {
	return func(t *testing.T, m *Message) {
		t.Helper()
		if m.LooksLikeSuccess() != want || m.IsSuccess() {
			t.Errorf("LooksLikeSuccess() = %v, IsSuccess() = %v, want %v, false", m.LooksLikeSuccess(), m.IsSuccess(), want)
		}
	}
}

// Decode fails only when there is no opened payload to read.
func TestDecodeNeedsOpen(t *testing.T) {
	c := NewCodec([]byte("k"))
	var m Message
	if err := c.Decode(&m); !errors.Is(err, errNotOpened) {
		t.Errorf("Decode before any Open: %v", err)
	}
	good, err := c.Seal(nil, []byte(`{"type":"ack","txn_id":"TXN1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(&m); !errors.Is(err, errNotOpened) {
		t.Errorf("Decode after Seal: %v", err)
	}
	for _, frame := range []string{`{"payload":`, `{"payload":[]}`, `{"payload":{"a":"\ud800"},"signature":"00"}`} {
		if c.Open([]byte(frame)) == nil {
			t.Fatalf("%s opened", frame)
		}
		if err := c.Decode(&m); !errors.Is(err, errNotOpened) {
			t.Errorf("Decode after Open(%s): %v", frame, err)
		}
	}
	// A payload whose signature is wrong is decoded for diagnostics.
	bad := bytes.Replace(bytes.TrimSuffix(good, []byte("\n")), []byte(`"TXN1"`), []byte(`"TXN2"`), 1)
	if err := c.Open(bad); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered frame: %v", err)
	}
	if err := c.Decode(&m); err != nil || m.TxnID != "TXN2" {
		t.Errorf("Decode after a bad signature: %v, %+v", err, m)
	}
	// The kiosk's own builders replace the canonical bytes Decode reads.
	if err := c.Open(bytes.TrimSuffix(good, []byte("\n"))); err != nil {
		t.Fatal(err)
	}
	c.AppendCancel(nil, testHeader)
	if err := c.Decode(&m); !errors.Is(err, errNotOpened) {
		t.Errorf("Decode after a builder: %v", err)
	}
}
