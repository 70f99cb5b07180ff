package mobypay

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var testHeader = Header{TxnID: "TXN1757492341554", KioskID: "KIOSK001", Nonce: "8915fea5-ad40-4c7c-b0a9-86665c66013e", Timestamp: 1757492341555}

// The seed's sample request, rebuilt from typed values, is byte-identical
// to the signed sample (wire order aside, which the canonical form removes).
func TestTransactionRequestMatchesSeed(t *testing.T) {
	c := NewCodec([]byte(DevSecret))
	out, err := c.AppendTransactionRequest(nil, testHeader, 1000, ModeCard)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"payload":{"amount":10.0,"kiosk_id":"KIOSK001","nonce":"8915fea5-ad40-4c7c-b0a9-86665c66013e","payment_mode":"card","timestamp":"1757492341555","txn_id":"TXN1757492341554","type":"transaction_request"},"signature":"7ee758c7a3182d1b141d998e4a5f92d85141de1537ff51bde0302ccc9927f8e8"}` + "\n"
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestRoundTrips(t *testing.T) {
	kiosk := NewCodec([]byte("s3cret"))
	pos := NewCodec([]byte("s3cret"))
	h := testHeader
	h.KioskID = "Kedai \"Ali\" / é"
	build := map[string]func() []byte{
		"request": func() []byte {
			b, err := kiosk.AppendTransactionRequest(nil, h, 1250, ModeIPP)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"plan":   func() []byte { return kiosk.AppendPlanSelection(nil, h, "plan-6m") },
		"cancel": func() []byte { return kiosk.AppendCancel(nil, h) },
	}
	for name, f := range build {
		wire := f()
		if err := pos.Open(bytes.TrimSuffix(wire, []byte("\n"))); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, wire)
		}
		var m Message
		if err := pos.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m.TxnID != h.TxnID || m.KioskID != h.KioskID || m.Nonce != h.Nonce || m.Timestamp != "1757492341555" {
			t.Errorf("%s: decoded %+v", name, m)
		}
		switch name {
		case "request":
			if sen, ok := m.AmountSen(); !ok || sen != 1250 || m.PaymentMode != ModeIPP || m.Type != TypeTransactionRequest {
				t.Errorf("request decoded as %+v", m)
			}
		case "plan":
			if m.PlanID != "plan-6m" || m.Type != TypeIPPPlanSelection {
				t.Errorf("plan selection decoded as %+v", m)
			}
		case "cancel":
			if m.Type != TypeCancelTransaction {
				t.Errorf("cancel decoded as %+v", m)
			}
		}
	}
}

func TestBuilderRefusals(t *testing.T) {
	c := NewCodec([]byte("k"))
	for _, sen := range []int64{0, -1, MaxAmountSen + 1} {
		if _, err := c.AppendTransactionRequest(nil, testHeader, sen, ModeCard); err == nil {
			t.Errorf("amount %d accepted", sen)
		}
	}
	if _, err := c.AppendTransactionRequest(nil, testHeader, 100, "cash"); err == nil {
		t.Error("mode cash accepted")
	}
}

const resultWire = `{"payload":{"type":"transaction_result","txn_id":"TXN1757482355464","status":"success","pos_id":"POS001","transaction_id":"000410","amount":2.0,"timestamp":"1757482370549","nonce":"joHQ83Mp9dWbFsREUHDRCg=="},"signature":"fc8d4da75e3930f296d2dae8edaac62ec9a5059a5ea912cebcf8a9433852f761"}`

func TestTampering(t *testing.T) {
	c := NewCodec([]byte(DevSecret))
	if err := c.Open([]byte(resultWire)); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	cases := map[string]struct {
		wire string
		want error
		msg  string
	}{
		"amount":         {strings.Replace(resultWire, `2.0`, `20.0`, 1), ErrSignature, "does not match the payload"},
		"amount as int":  {strings.Replace(resultWire, `2.0`, `2`, 1), ErrSignature, "does not match the payload"},
		"status":         {strings.Replace(resultWire, `"success"`, `"approved"`, 1), ErrSignature, "does not match the payload"},
		"signature bit":  {strings.Replace(resultWire, `"fc8d`, `"fc8c`, 1), ErrSignature, "does not match the payload"},
		"short sig":      {strings.Replace(resultWire, `f761"`, `f76"`, 1), ErrSignature, "characters"},
		"non-hex sig":    {strings.Replace(resultWire, `f761"`, `f76g"`, 1), ErrSignature, "not hex"},
		"no sig":         {`{"payload":{"type":"ack"}}`, ErrSignature, "no signature"},
		"sig number":     {`{"payload":{"type":"ack"},"signature":5}`, ErrSignature, "not a string"},
		"no payload":     {`{"signature":"00"}`, ErrMalformed, "no payload"},
		"payload array":  {`{"payload":[],"signature":"00"}`, ErrMalformed, "not an object"},
		"not object":     {`[1]`, ErrMalformed, "not a JSON object"},
		"garbage":        {`{"payload":`, ErrMalformed, "unexpected end"},
		"dup in payload": {strings.Replace(resultWire, `"pos_id":"POS001"`, `"pos_id":"POS001","pos_id":"X"`, 1), ErrMalformed, "duplicate key"},
	}
	for name, tc := range cases {
		err := c.Open([]byte(tc.wire))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", name, err, tc.want, tc.msg)
		}
	}
	if err := NewCodec([]byte("other secret")).Open([]byte(resultWire)); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	// Upper-case hex is the same signature.
	up := strings.Replace(resultWire, "fc8d4da75e3930f296d2dae8edaac62ec9a5059a5ea912cebcf8a9433852f761", "FC8D4DA75E3930F296D2DAE8EDAAC62EC9A5059A5EA912CEBCF8A9433852F761", 1)
	if err := c.Open([]byte(up)); err != nil {
		t.Errorf("upper-case signature: %v", err)
	}
}

// Every byte value in every place of the signature: Open takes the frame
// only with the right digit there, in either case.
func TestSignatureCharacters(t *testing.T) {
	c := NewCodec([]byte(DevSecret))
	const sig = "fc8d4da75e3930f296d2dae8edaac62ec9a5059a5ea912cebcf8a9433852f761"
	at := strings.Index(resultWire, sig)
	if at < 0 {
		t.Fatal("no signature in resultWire")
	}
	wire := []byte(resultWire)
	for i := range len(sig) {
		for v := range 256 {
			wire[at+i] = byte(v)
			d := sig[i]
			want := byte(v) == d || d >= 'a' && byte(v) == d-'a'+'A'
			if err := c.Open(wire); (err == nil) != want {
				t.Fatalf("signature with %q for %q at %d: %v", byte(v), d, i, err)
			}
		}
		wire[at+i] = sig[i]
	}
}

// TestAppendSignature: the signature a peer puts beside a payload it wrote
// its own way is the one Seal puts beside the canonical form, and Open
// takes the peer's envelope as it is.
func TestAppendSignature(t *testing.T) {
	c := NewCodec([]byte("k"))
	wire := `{"type": "ack", "txn_id": "TXN1", "status": "processing", "amount": 2.50}`
	sig, err := c.AppendSignature(nil, []byte(wire))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := c.Seal(nil, []byte(wire))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"signature":"` + string(sig) + `"}` + "\n"; !strings.HasSuffix(string(sealed), want) {
		t.Errorf("Seal signed differently:\n%s\nwant suffix %s", sealed, want)
	}
	if err := c.Open([]byte(`{"payload": ` + wire + `, "signature": "` + string(sig) + `"}`)); err != nil {
		t.Errorf("peer envelope: %v", err)
	}
	for _, bad := range []string{`[1]`, `{"a":`} {
		if _, err := c.AppendSignature(nil, []byte(bad)); err == nil {
			t.Errorf("AppendSignature(%s) accepted", bad)
		}
	}
}

func TestDecodeResultAndPlans(t *testing.T) {
	c := NewCodec([]byte("k"))
	payload := `{"type":"transaction_result","txn_id":"TXN1","status":"ipp_plans","pos_id":"POS\u0030\u00e9","amount":100.0,"timestamp":"1757492763490","nonce":"K6LQ","future_field":{"x":[1,2]},
	  "plans":[{"planId":"pay-in-full","frequency":"","totalInstallments":0,"installmentDetails":[]},{"totalInstallments":6,"planId":"6m","frequency":"monthly","installmentDetails":[{"amount":16.67}]}]}`
	wire, err := c.Seal(nil, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(wire); err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := c.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Status != StatusIPPPlans || m.PosID != "POS0é" || !m.HasAmount || m.Amount != 100 {
		t.Errorf("decoded %+v", m)
	}
	if len(m.Plans) != 2 || m.Plans[0].ID != "pay-in-full" || m.Plans[1].ID != "6m" || m.Plans[1].TotalInstallments != 6 || m.Plans[1].Frequency != "monthly" {
		t.Fatalf("plans %+v", m.Plans)
	}
	if want := `{"frequency":"monthly","installmentDetails":[{"amount":16.67}],"planId":"6m","totalInstallments":6}`; m.Plans[1].Raw != want {
		t.Errorf("plan raw %s, want %s", m.Plans[1].Raw, want)
	}
	if !strings.Contains(m.Payload, `"future_field":{"x":[1,2]}`) {
		t.Errorf("unknown field lost from evidence: %s", m.Payload)
	}
	if m.IsSuccess() {
		t.Error("ipp_plans taken for success")
	}
}

// A canonical payload is checked and decoded from the frame's own bytes,
// any other from the canonical copy Open writes; a payload decodes the
// same either way, however much of it the peer wrote canonically.
func TestDecodeCanonicalFrame(t *testing.T) {
	c := NewCodec([]byte(DevSecret))
	decode := func(payload string) (Message, string) {
		t.Helper()
		sig, err := c.AppendSignature(nil, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		wire := []byte(`{"payload":` + payload + `,"signature":"` + string(sig) + `"}`)
		if err := c.Open(wire); err != nil {
			t.Fatalf("%s: %v", payload, err)
		}
		var m Message
		if err := c.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m, string(c.Canonical())
	}
	base, err := Canonical([]byte(plansPayload))
	if err != nil {
		t.Fatal(err)
	}
	canon := string(base)
	want, got := decode(canon)
	if got != canon || c.wire < 0 || len(want.Plans) != 3 || want.Plans[1].Raw == "" {
		t.Fatalf("canonical frame: %s (from the frame: %v) decoded to %+v", got, c.wire >= 0, want)
	}
	for name, p := range map[string]string{
		"wire order":           plansPayload,
		"one space at the top": strings.Replace(canon, `"amount":`, `"amount": `, 1),
		"json.dumps spacing":   strings.NewReplacer(",", ", ", ":", ": ").Replace(plansPayload),
	} {
		m, got := decode(p)
		if got != canon || c.wire >= 0 {
			t.Errorf("%s: canonical %s (from the frame: %v), want %s", name, got, c.wire >= 0, canon)
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s: decoded\n%+v\nwant\n%+v", name, m, want)
		}
	}
	// Canonical, taken from the frame, cannot be appended into it.
	sig, err := c.AppendSignature(nil, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	frame := []byte(`{"payload":{"a":1},"signature":"` + string(sig) + `"}`)
	if err := c.Open(frame); err != nil {
		t.Fatal(err)
	}
	keep := string(frame)
	_ = append(c.Canonical(), "xxxxxxxxxxxx"...)
	if string(frame) != keep {
		t.Fatal("appending to Canonical wrote into the frame")
	}
}

func TestDecodeTolerance(t *testing.T) {
	c := NewCodec([]byte("k"))
	open := func(p string) (Message, error) {
		t.Helper()
		wire, err := c.Seal(nil, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Open(wire); err != nil {
			t.Fatal(err)
		}
		var m Message
		return m, c.Decode(&m)
	}
	m, err := open(`{"type":"ping","nonce":"n","timestamp":1757492763490}`)
	if err != nil || m.Type != "ping" || m.Timestamp != "1757492763490" {
		t.Errorf("unknown type with numeric timestamp: %+v, %v", m, err)
	}
	m, err = open(`{"type":"transaction_result","status":"approved","transaction_id":410,"amount":2}`)
	if err != nil || !m.IsSuccess() || m.TransactionID != "410" {
		t.Errorf("approved with numeric id: %+v, %v", m, err)
	}
	if sen, ok := m.AmountSen(); !ok || sen != 200 {
		t.Errorf("integer amount 2 gave %d sen, %v", sen, ok)
	}
	m, _ = open(`{"type":"transaction_result","status":"unsuccessful"}`)
	if m.IsSuccess() {
		t.Error("status \"unsuccessful\" taken for success")
	}
	// What Decode used to refuse it now describes: see TestDecodeOdd.
}

// The builders write the payload in place inside the envelope and leave
// Canonical pointing at it: after a prefix the output is the prefix and
// the envelope alone, Canonical is its payload, Decode refuses (there is
// no opened payload), and an Open after it leaves the caller's buffer be.
func TestBuilderPayloadInPlace(t *testing.T) {
	c := NewCodec([]byte(DevSecret))
	alone, err := c.AppendTransactionRequest(nil, testHeader, 1250, ModeCard)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := c.Seal(nil, []byte(`{"b":1,"a":[2]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 1024) // room to spare: nothing may append into it
	buf = append(buf, "prefix"...)
	out, err := c.AppendTransactionRequest(buf, testHeader, 1250, ModeCard)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "prefix"+string(alone) {
		t.Fatalf("after a prefix:\n%s\nwant prefix and\n%s", out, alone)
	}
	payload := strings.TrimSuffix(strings.TrimPrefix(string(alone), `{"payload":`), "\n")
	payload = payload[:strings.LastIndex(payload, `,"signature":"`)]
	if string(c.Canonical()) != payload {
		t.Fatalf("Canonical = %s, want %s", c.Canonical(), payload)
	}
	var m Message
	if err := c.Decode(&m); err == nil {
		t.Fatal("Decode after a builder succeeded")
	}
	keep := string(out)
	if err := c.Open(wire); err != nil {
		t.Fatal(err)
	}
	if string(out) != keep || string(out[:cap(out)][len(out):len(out)+64]) != string(make([]byte, 64)) {
		t.Fatal("Open wrote into the buffer a builder returned")
	}
	if string(c.Canonical()) != `{"a":[2],"b":1}` {
		t.Fatalf("Canonical after Open = %s", c.Canonical())
	}
}
