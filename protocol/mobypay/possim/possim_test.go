package possim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// rawKiosk is a bare listener the simulator connects to, so that tests
// see the simulator's bytes exactly as written.
type rawKiosk struct {
	t     *testing.T
	conn  net.Conn
	fr    *mobypay.FrameReader
	codec *mobypay.Codec
	k     kiosk
}

func startRawKiosk(t *testing.T, behaviour Behaviour) *rawKiosk {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	startSim(t, Config{Addr: ln.Addr().String(), Behaviour: behaviour})
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(srvWait))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(srvWait))
	return &rawKiosk{t: t, conn: c, fr: mobypay.NewFrameReader(c, 0), codec: mobypay.NewCodec(srvSecret), k: kiosk{t: t, codec: mobypay.NewCodec(srvSecret)}}
}

func (r *rawKiosk) request(txn string, sen int64, mode string) {
	r.t.Helper()
	f, err := r.k.codec.AppendTransactionRequest(nil, r.k.header(txn), sen, mode)
	if err != nil {
		r.t.Fatal(err)
	}
	mobypaytest.Write(r.t, r.conn, string(f))
}

// next returns the next line and whether its signature verifies.
func (r *rawKiosk) next() (string, error) {
	r.t.Helper()
	b, err := r.fr.Next()
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b), r.codec.Open(b)
}

var (
	ackWire = regexp.MustCompile(`^\{"payload": \{"type": "ack", "txn_id": "TXN1757492341554", "status": "processing", "pos_id": "POS001", ` +
		`"timestamp": "\d{13}", "nonce": "([A-Za-z0-9+/]{22}==)"\}, "signature": "[0-9a-f]{64}"\}$`)
	successWire = regexp.MustCompile(`^\{"payload": \{"type": "transaction_result", "txn_id": "TXN1757492341554", "status": "success", "pos_id": "POS001", ` +
		`"transaction_id": "\d{6}", "amount": 2\.5, "authorization_code": "[A-Z0-9]+", "card_last4": "\d{4}", ` +
		`"timestamp": "\d{13}", "nonce": "[A-Za-z0-9+/]{22}=="\}, "signature": "[0-9a-f]{64}"\}$`)
)

// TestSimWireFormat: the simulator writes what the app's Python writes.
func TestSimWireFormat(t *testing.T) {
	r := startRawKiosk(t, Approve)
	r.request("TXN1757492341554", 250, mobypay.ModeCard)
	ack, err := r.next()
	if err != nil {
		t.Fatalf("ack does not verify: %v\n%s", err, ack)
	}
	m := ackWire.FindStringSubmatch(ack)
	if m == nil {
		t.Fatalf("ack not in the app's format:\n%s", ack)
	}
	if n, err := base64.StdEncoding.DecodeString(m[1]); err != nil || len(n) != 16 {
		t.Errorf("nonce %q is not 16 bytes of base64", m[1])
	}
	res, err := r.next()
	if err != nil {
		t.Fatalf("result does not verify: %v\n%s", err, res)
	}
	if !successWire.MatchString(res) {
		t.Fatalf("result not in the app's format:\n%s", res)
	}
}

func TestSimReplayWritesIdenticalBytes(t *testing.T) {
	r := startRawKiosk(t, Replay)
	r.request("TXN1", 1000, mobypay.ModeCard)
	r.next()
	first, err1 := r.next()
	second, err2 := r.next()
	if err1 != nil || err2 != nil || first != second || !strings.Contains(first, `"status": "success"`) {
		t.Fatalf("replay:\n%s (%v)\n%s (%v)", first, err1, second, err2)
	}
}

// TestSimBadSigSignsWireBytes: badsig signs the bytes on the wire instead
// of the canonical payload.
func TestSimBadSigSignsWireBytes(t *testing.T) {
	r := startRawKiosk(t, BadSig)
	r.request("TXN1", 1000, mobypay.ModeCard)
	if ack, err := r.next(); err != nil {
		t.Fatalf("ack: %v\n%s", err, ack)
	}
	res, err := r.next()
	if !errors.Is(err, mobypay.ErrSignature) {
		t.Fatalf("badsig result: %v, want mobypay.ErrSignature\n%s", err, res)
	}
	var env struct {
		Payload   json.RawMessage
		Signature string
	}
	if err := json.Unmarshal([]byte(res), &env); err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, srvSecret)
	mac.Write(env.Payload)
	if hex.EncodeToString(mac.Sum(nil)) != env.Signature {
		t.Errorf("signature is not the HMAC of the wire payload")
	}
}

func TestSimStaleIsSignedAndOld(t *testing.T) {
	r := startRawKiosk(t, Stale)
	r.request("TXN1", 1000, mobypay.ModeCard)
	r.next()
	res, err := r.next()
	if err != nil {
		t.Fatalf("stale result does not verify: %v", err)
	}
	var m mobypay.Message
	if err := r.codec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	ts, _ := m.TimestampMillis()
	if age := time.Since(time.UnixMilli(ts)); age < 110*time.Second || age > 130*time.Second {
		t.Errorf("stale result is %s old:\n%s", age, res)
	}
}

func TestSimPlans(t *testing.T) {
	r := startRawKiosk(t, IPP)
	r.request("TXN1", 10001, mobypay.ModeIPP)
	r.next()
	plans, err := r.next()
	if err != nil {
		t.Fatalf("plans: %v", err)
	}
	if !strings.Contains(plans, `"plans": [{"planId": "pay-in-full", "frequency": "", "totalInstallments": 0, "installmentDetails": []}, {"planId": `) {
		t.Errorf("plans not in the app's format:\n%s", plans)
	}
	var m mobypay.Message
	if err := r.codec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	var six struct{ InstallmentDetails []struct{ Amount float64 } }
	if len(m.Plans) != 2 || json.Unmarshal([]byte(m.Plans[1].Raw), &six) != nil || len(six.InstallmentDetails) != 6 {
		t.Fatalf("plans: %s", m.Payload)
	}
	var sum int64
	for _, d := range six.InstallmentDetails {
		sen, ok := mobypay.FloatToSen(d.Amount)
		if !ok {
			t.Fatalf("instalment amount %v", d.Amount)
		}
		sum += sen
	}
	if sum != 10001 {
		t.Errorf("instalments sum to %d sen, want 10001", sum)
	}
	// An unknown plan is answered with an error; the offer stands.
	mobypaytest.Write(t, r.conn, string(r.k.codec.AppendPlanSelection(nil, r.k.header("TXN1"), "ipp-99m")))
	if e, _ := r.next(); !strings.HasPrefix(e, `{"payload": {"type": "error", "txn_id": "TXN1", "message": `) {
		t.Errorf("unknown plan answered with:\n%s", e)
	}
	mobypaytest.Write(t, r.conn, string(r.k.codec.AppendPlanSelection(nil, r.k.header("TXN1"), "pay-in-full")))
	if ack, _ := r.next(); !strings.Contains(ack, `"status": "plan_received"`) {
		t.Errorf("plan selection answered with:\n%s", ack)
	}
	if res, _ := r.next(); !strings.Contains(res, `"status": "success"`) || !strings.Contains(res, `"plan_id": "pay-in-full"`) {
		t.Errorf("result:\n%s", res)
	}
}

func TestSimSplitWritesPieces(t *testing.T) {
	r := startRawKiosk(t, Split)
	r.request("TXN1", 1000, mobypay.ModeCard)
	// Written 7 bytes at a time, the frames still arrive whole and signed.
	if ack, err := r.next(); err != nil {
		t.Fatalf("ack: %v\n%s", err, ack)
	}
	if res, err := r.next(); err != nil || !strings.Contains(res, `"status": "success"`) {
		t.Fatalf("result: %v\n%s", err, res)
	}
}

// TestSimBackoff: failed sessions are retried after 1, 2, 4 ... units,
// capped at MaxBackoff. Only lower bounds are checked: timers never fire
// early, but a loaded machine may be late.
func TestSimBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	const unit = 10 * time.Millisecond
	ev := startSim(t, Config{Addr: ln.Addr().String(), MinBackoff: unit, MaxBackoff: 4 * unit})
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(srvWait))
	go func() {
		for range 6 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // the kiosk refuses: the session fails at once
		}
	}()
	// Gaps are measured between the simulator's own connect times: a
	// slow test goroutine must not squeeze them together.
	var at []time.Time
	for range 6 {
		e := awaitSim(t, ev, "connect", func(e Event) bool { return e.Kind == Connected })
		at = append(at, e.At)
	}
	want := []time.Duration{unit, 2 * unit, 4 * unit, 4 * unit, 4 * unit}
	for i, w := range want {
		if gap := at[i+1].Sub(at[i]); gap < w-time.Millisecond {
			t.Errorf("reconnect %d after %s, want at least %s", i+1, gap, w)
		}
	}
}

// TestSimDialBackoff: a kiosk that cannot be reached is retried with
// back-off too, until the context ends.
func TestSimDialBackoff(t *testing.T) {
	const unit = 10 * time.Millisecond
	// Port 1 (tcpmux) is unused on any test machine: connect is refused.
	ev := startSim(t, Config{Addr: "127.0.0.1:1", MinBackoff: unit, MaxBackoff: 2 * unit})
	var at []time.Time
	for range 4 {
		e := awaitSim(t, ev, "dial failure", func(e Event) bool {
			if e.Kind == Connected {
				t.Skip("something listens on 127.0.0.1:1")
			}
			return e.Kind == DialFailed
		})
		if e.Err == nil {
			t.Fatal("dial failure without error")
		}
		at = append(at, e.At)
	}
	for i, w := range []time.Duration{unit, 2 * unit, 2 * unit} {
		if gap := at[i+1].Sub(at[i]); gap < w-time.Millisecond {
			t.Errorf("retry %d after %s, want at least %s", i+1, gap, w)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cases := []Config{
		{Secret: srvSecret},
		{Addr: "127.0.0.1:1"},
		{Addr: "127.0.0.1:1", Secret: srvSecret, Behaviour: "aprove"},
	}
	for _, c := range cases {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	for _, b := range Behaviours() {
		if _, err := New(Config{Addr: "x:1", Secret: srvSecret, Behaviour: b}); err != nil || b.Help() == "" {
			t.Errorf("behaviour %s: %v", b, err)
		}
	}
	// The names are the CLI's (kioskd possim -behaviour NAME): scripts
	// and operators' notes use them, so they must not change.
	const want = "ackonly approve approved badsig cancel-late decline drop error ipp merged replay silent slow split stale wrongamount wrongtxn"
	var got []string
	for _, b := range Behaviours() {
		got = append(got, string(b))
	}
	if strings.Join(got, " ") != want {
		t.Errorf("behaviours %q, want %q", got, want)
	}
}
