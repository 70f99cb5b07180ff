package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
)

// The server is tested against a real payment.Service on a real journal,
// built from payment's exported API only: what the handlers see is what
// the daemon gives them.

type sent struct{ kind, id, plan string }

// provider is a terminal that records what the service sends it.
type provider struct {
	ready atomic.Bool
	sent  chan sent
}

func (p *provider) Name() string { return "mobypay" }
func (p *provider) Ready() error {
	if !p.ready.Load() {
		return errors.New("not connected")
	}
	return nil
}
func (p *provider) Request(t *payment.Txn) error { p.sent <- sent{"request", t.ID, ""}; return nil }
func (p *provider) SelectPlan(t *payment.Txn, id string) error {
	p.sent <- sent{"plan", t.ID, id}
	return nil
}
func (p *provider) Cancel(t *payment.Txn) error { p.sent <- sent{"cancel", t.ID, ""}; return nil }

type vender struct{}

func (vender) Vend(context.Context, payment.Txn, func(int) error) error { return nil }

type printer struct{}

func (printer) Receipt(payment.Txn) {}

type harness struct {
	t      *testing.T
	svc    *payment.Service
	j      *payment.Journal
	prov   *provider
	events <-chan control.Event
	c      *http.Client
}

func config() payment.Config {
	to := payment.Timeouts{Ack: 5 * time.Second, Result: 5 * time.Second, Plan: 5 * time.Second}
	return payment.Config{
		Timeouts:    map[string]payment.Timeouts{"card": to, "ipp": to},
		CancelGrace: 5 * time.Second, ReconnectGrace: 5 * time.Second,
		IPPAutoSelect: "none", SuccessAfterCancel: "vend",
	}
}

// startAt opens the journal at path, recovers it as kioskd run does, runs
// a service on it and serves the control API for it on a real unix
// socket. stop ends both and closes the journal, so that a test can start
// again on the same file (a restart).
func startAt(t *testing.T, path string) (h *harness, recovered []payment.Txn, stop func()) {
	t.Helper()
	j, err := payment.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if recovered, err = j.Recover(time.Now()); err != nil {
		j.Close()
		t.Fatal(err)
	}
	h = &harness{t: t, j: j, prov: &provider{sent: make(chan sent, 16)}}
	h.prov.ready.Store(true)
	h.svc = payment.NewService(config(), j, vender{}, printer{}, h.prov)
	ev, unsub := h.svc.Subscribe()
	h.events = ev
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.Run(ctx); close(done) }()

	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: control.NewServer(h.svc).Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	h.c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	var once sync.Once
	stop = func() { once.Do(func() { srv.Close(); cancel(); <-done; unsub(); j.Close() }) }
	t.Cleanup(stop)
	return h, recovered, stop
}

func start(t *testing.T) *harness {
	t.Helper()
	h, _, _ := startAt(t, filepath.Join(t.TempDir(), "journal.db"))
	return h
}

func (h *harness) call(method, path, body string, out any) int {
	h.t.Helper()
	req, _ := http.NewRequest(method, "http://kioskd"+path, strings.NewReader(body))
	return h.send(req, out)
}

// post sends POST /v1/payments with the Idempotency-Key header values
// given (none: no header).
func (h *harness) post(body string, out any, keys ...string) int {
	h.t.Helper()
	req, _ := http.NewRequest("POST", "http://kioskd/v1/payments", strings.NewReader(body))
	for _, k := range keys {
		req.Header.Add(control.HeaderIdempotencyKey, k)
	}
	return h.send(req, out)
}

// send does req and decodes the answer into out (if not nil).
func (h *harness) send(req *http.Request, out any) int {
	h.t.Helper()
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// state waits for the service to say the payment id is in state s.
func (h *harness) state(id string, s payment.State) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-h.events:
			if e.Txn != nil && e.Txn.ID == id && e.Txn.State == s {
				return
			}
		case <-deadline:
			h.t.Fatalf("%s never reached %s", id, s)
		}
	}
}

func (h *harness) expectSent(kind string) {
	h.t.Helper()
	select {
	case s := <-h.prov.sent:
		if s.kind != kind {
			h.t.Fatalf("sent %s, want %s", s.kind, kind)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("nothing sent, want %s", kind)
	}
}

func (h *harness) nothingSent() {
	h.t.Helper()
	select {
	case s := <-h.prov.sent:
		h.t.Fatalf("sent %+v", s)
	default:
	}
}

func TestServer(t *testing.T) {
	h := start(t)

	// Subscribe first: the stream must show the whole payment.
	req, _ := http.NewRequest("GET", "http://kioskd/v1/events", nil)
	stream, err := (&http.Client{Transport: h.c.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("events Content-Type %q", ct)
	}
	events := make(chan control.Event, 32)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e control.Event
				json.Unmarshal([]byte(d), &e)
				events <- e
			}
		}
		close(events)
	}()

	codes := map[string]struct {
		body string
		want int
	}{
		"bad amount":   {`{"amount":"12.345","mode":"card"}`, 400},
		"float amount": {`{"amount":12.5,"mode":"card"}`, 400},
		"bad mode":     {`{"amount":"1.00","mode":"cash"}`, 400},
		"unknown key":  {`{"amount":"1.00","mode":"card","tip":"1"}`, 400},
		"not json":     {`amount=1`, 400},
		"huge":         {`{"amount":"1.00","mode":"` + strings.Repeat("x", 20000) + `"}`, 400},
	}
	for name, c := range codes {
		var e control.Error
		if got := h.call("POST", "/v1/payments", c.body, &e); got != c.want || e.Error == "" {
			t.Errorf("%s: %d %v, want %d with an error", name, got, e, c.want)
		}
	}
	h.prov.ready.Store(false)
	if got := h.call("POST", "/v1/payments", `{"amount":"1.00","mode":"card"}`, nil); got != 503 {
		t.Errorf("POS not connected: %d, want 503", got)
	}
	h.prov.ready.Store(true)

	var tx control.Txn
	if got := h.call("POST", "/v1/payments", `{"amount":"12.50","mode":"ipp"}`, &tx); got != 201 || tx.State != payment.Sent || tx.Amount != 1250 {
		t.Fatalf("create: %d %+v", got, tx)
	}
	h.expectSent("request")
	if got := h.call("POST", "/v1/payments", `{"amount":"1.00","mode":"card"}`, nil); got != 409 {
		t.Errorf("second payment: %d, want 409", got)
	}
	h.svc.Report(payment.Report{TxnID: tx.ID, Kind: payment.ReportPlans, Plans: []control.Plan{{ID: "a"}, {ID: "b"}}})
	h.state(tx.ID, payment.PlansOffered)
	if got := h.call("POST", "/v1/payments/"+tx.ID+"/plan", `{"plan_id":"zz"}`, nil); got != 400 {
		t.Errorf("unoffered plan: %d", got)
	}
	if got := h.call("POST", "/v1/payments/"+tx.ID+"/plan", `{"plan_id":"b"}`, nil); got != 200 {
		t.Errorf("plan: %d", got)
	}
	h.expectSent("plan")
	var st map[string]json.RawMessage
	if got := h.call("GET", "/v1/status", "", &st); got != 200 || !strings.Contains(string(st["current"]), tx.ID) {
		t.Errorf("status: %d %s", got, st["current"])
	}
	if got := h.call("POST", "/v1/payments/"+tx.ID+"/cancel", "", nil); got != 200 {
		t.Errorf("cancel: %d", got)
	}
	h.expectSent("cancel")
	h.svc.Report(payment.Report{TxnID: tx.ID, Kind: payment.ReportDeclined, Message: "USER_ABORT", Evidence: control.Evidence{Type: "transaction_result", Payload: `{"x":1}`}})
	h.state(tx.ID, payment.Cancelled)
	if got := h.call("POST", "/v1/payments/"+tx.ID+"/cancel", "", nil); got != 409 {
		t.Errorf("cancel of a finished payment: %d, want 409", got)
	}
	if got := h.call("GET", "/v1/payments/TXN1", "", nil); got != 404 {
		t.Errorf("unknown: %d", got)
	}
	var withEv control.TxnWithEvidence
	if got := h.call("GET", "/v1/payments/"+tx.ID+"?evidence=1", "", &withEv); got != 200 || len(withEv.Messages) != 2 || withEv.Messages[1].Payload != `{"x":1}` {
		t.Errorf("evidence: %d %+v", got, withEv.Messages)
	}
	var list []control.Txn
	if got := h.call("GET", "/v1/payments?limit=5", "", &list); got != 200 || len(list) != 1 || list[0].Amount.String() != "12.50" {
		t.Errorf("list: %d %+v", got, list)
	}

	// The stream saw the link, then each step of the payment in order.
	var states []payment.State
	deadline := time.After(10 * time.Second)
	for len(states) == 0 || states[len(states)-1] != payment.Cancelled {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			if e.Txn != nil && e.Txn.ID == tx.ID && (len(states) == 0 || states[len(states)-1] != e.Txn.State) {
				states = append(states, e.Txn.State)
			}
		case <-deadline:
			t.Fatalf("stream saw %v", states)
		}
	}
	want := []payment.State{payment.Sent, payment.PlansOffered, payment.PlanSelected, payment.CancelRequested, payment.Cancelled}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Fatalf("stream states %v, want %v", states, want)
	}
}

// A record that cannot be decoded (here: an amount that is an object).
const badID = "TXN1757492341001"

var badRecord = []byte(`{"txn_id":"TXN1757492341001","amount":{"sen":1}}`)

// Defect 1 through the API: undecodable records are quarantined at start
// and listed for review; nothing answers 500 without saying why.
func TestServerQuarantine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := payment.OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	good := &payment.Txn{Provider: "mobypay", Mode: "card", Amount: 100, State: payment.Declined}
	if err := j.Create(good, time.Now()); err != nil {
		t.Fatal(err)
	}
	j.Close()
	// The journal has no way to write a broken record, on purpose: write
	// one under it, as a torn or corrupted disk would.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("txns")).Put([]byte(badID), badRecord) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	h, recovered, _ := startAt(t, path)
	if len(recovered) != 1 || recovered[0].ID != badID || !recovered[0].Quarantined {
		t.Fatalf("recovered %+v", recovered)
	}
	var list []control.Txn
	if got := h.call("GET", "/v1/payments", "", &list); got != 200 || len(list) != 1 || list[0].ID != good.ID {
		t.Fatalf("list: %d %+v", got, list)
	}
	var e control.Error
	if got := h.call("GET", "/v1/payments/"+badID, "", &e); got != 500 || !strings.Contains(e.Error, "cannot be decoded") {
		t.Errorf("get of a quarantined record: %d %v", got, e)
	}
	var reviews []control.Txn
	if got := h.call("GET", "/v1/reviews", "", &reviews); got != 200 || len(reviews) != 1 || reviews[0].ID != badID ||
		!reviews[0].Quarantined || reviews[0].State != payment.Unknown || !strings.HasPrefix(reviews[0].Review, "quarantined: ") {
		t.Fatalf("reviews: %d %+v", got, reviews)
	}
	var quar []control.Quarantined
	if got := h.call("GET", "/v1/quarantine", "", &quar); got != 200 || len(quar) != 1 || string(quar[0].Raw) != string(badRecord) {
		t.Fatalf("quarantine: %d %+v", got, quar)
	}
	for name, body := range map[string]string{"no note": `{"note":" "}`, "long note": `{"note":"` + strings.Repeat("n", 501) + `"}`} {
		if got := h.call("POST", "/v1/payments/"+badID+"/settle", body, nil); got != 400 {
			t.Errorf("settle, %s: %d, want 400", name, got)
		}
	}
	var settled control.Txn
	if got := h.call("POST", "/v1/payments/"+badID+"/settle", `{"note":"journal copied off for support"}`, &settled); got != 200 || settled.Settled == "" {
		t.Fatalf("settle: %d %+v", got, settled)
	}
	if got := h.call("GET", "/v1/reviews", "", &reviews); got != 200 || len(reviews) != 0 {
		t.Errorf("reviews after settle: %d %+v", got, reviews)
	}
	if got := h.call("GET", "/v1/reviews?all=1", "", &reviews); got != 200 || len(reviews) != 1 || reviews[0].Settled == "" {
		t.Errorf("reviews?all=1: %d %+v", got, reviews)
	}
}

// Defect 6: a controller that retries with the same Idempotency-Key gets
// the payment it made, never a second charge, across a restart.
func TestServerIdempotencyKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	h, _, stop := startAt(t, path)

	var first control.Txn
	if got := h.post(`{"amount":"12.50","mode":"card"}`, &first, "ORDER-1"); got != 201 || first.Key != "ORDER-1" || first.State != payment.Sent {
		t.Fatalf("create: %d %+v", got, first)
	}
	h.expectSent("request")
	var again control.Txn
	if got := h.post(`{"amount":"12.50","mode":"card"}`, &again, "ORDER-1"); got != 200 || again.ID != first.ID {
		t.Fatalf("retry while in progress: %d %+v", got, again)
	}
	h.nothingSent()
	// A key another provider's payment has (this service has no kpos).
	if err := h.j.Create(&payment.Txn{Provider: "kpos", Mode: "card", Amount: 1250, State: payment.Declined, Key: "ORDER-K"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string][2]string{
		"amount":   {"ORDER-1", `{"amount":"12.51","mode":"card"}`},
		"mode":     {"ORDER-1", `{"amount":"12.50","mode":"bnpl"}`},
		"provider": {"ORDER-K", `{"amount":"12.50","mode":"card"}`},
	} {
		var e control.Error
		if got := h.post(req[1], &e, req[0]); got != 409 || !strings.Contains(e.Error, "different payment") {
			t.Errorf("same key, other %s: %d %v, want 409", name, got, e)
		}
	}
	if got := h.post(`{"amount":"1.00","mode":"card"}`, nil); got != 409 {
		t.Errorf("no key while busy: %d, want 409", got)
	}
	for name, keys := range map[string][]string{
		"empty": {""}, "too long": {strings.Repeat("k", 65)}, "tab": {"a\tb"},
		"not ascii": {"ordér"}, "twice": {"a", "b"},
	} {
		var e control.Error
		if got := h.post(`{"amount":"1.00","mode":"card"}`, &e, keys...); got != 400 || e.Error == "" {
			t.Errorf("key %s: %d %v, want 400", name, got, e)
		}
	}
	h.nothingSent()
	h.svc.Report(payment.Report{TxnID: first.ID, Kind: payment.ReportDeclined, Message: "DECLINED"})
	h.state(first.ID, payment.Declined)
	// Finished: the key still names that payment (a new attempt needs a
	// new key).
	if got := h.post(`{"amount":"12.50","mode":"card"}`, &again, "ORDER-1"); got != 200 || again.ID != first.ID || again.State != payment.Declined {
		t.Fatalf("retry after the outcome: %d %+v", got, again)
	}

	stop()
	h, _, _ = startAt(t, path)
	if got := h.post(`{"amount":"12.50","mode":"card"}`, &again, "ORDER-1"); got != 200 || again.ID != first.ID || again.State != payment.Declined {
		t.Fatalf("retry after a restart: %d %+v", got, again)
	}
	if got := h.post(`{"amount":"9.00","mode":"card"}`, nil, "ORDER-1"); got != 409 {
		t.Errorf("mismatch after a restart: %d, want 409", got)
	}
	h.nothingSent()
	var second control.Txn
	if got := h.post(`{"amount":"12.50","mode":"card"}`, &second, "ORDER-2"); got != 201 || second.ID == first.ID {
		t.Fatalf("new key: %d %+v", got, second)
	}
	h.expectSent("request")
	if list, _ := h.j.List(0); len(list) != 3 {
		t.Errorf("journal holds %d payments, want 3", len(list))
	}
}

// Concurrent requests with one key over the real socket make exactly one
// payment: the key is looked up and journaled on the service loop.
func TestServerConcurrentSameKey(t *testing.T) {
	h := start(t)
	const n = 8
	type answer struct {
		code int
		id   string
	}
	answers := make(chan answer, n)
	begin := make(chan struct{})
	for range n {
		go func() {
			<-begin
			req, _ := http.NewRequest("POST", "http://kioskd/v1/payments", strings.NewReader(`{"amount":"5.00","mode":"card"}`))
			req.Header.Set(control.HeaderIdempotencyKey, "ORDER-RACE")
			resp, err := h.c.Do(req)
			if err != nil {
				answers <- answer{code: -1, id: err.Error()}
				return
			}
			defer resp.Body.Close()
			var tx control.Txn
			json.NewDecoder(resp.Body).Decode(&tx)
			answers <- answer{resp.StatusCode, tx.ID}
		}()
	}
	close(begin)
	codes := map[int]int{}
	ids := map[string]bool{}
	for range n {
		a := <-answers
		codes[a.code]++
		ids[a.id] = true
	}
	if codes[201] != 1 || codes[200] != n-1 || len(ids) != 1 {
		t.Fatalf("answers %v, ids %v: want one 201 and %d 200 for one payment", codes, ids, n-1)
	}
	h.expectSent("request")
	h.nothingSent()
	if list, _ := h.j.List(0); len(list) != 1 {
		t.Fatalf("journal holds %d payments, want 1", len(list))
	}
}

// Defect 9: messages about unknown transactions are listable.
func TestServerUnknownEvidence(t *testing.T) {
	h := start(t)
	for i := range 3 {
		r := payment.Report{TxnID: fmt.Sprintf("TXN%d", i), Kind: payment.ReportOther, Evidence: control.Evidence{Source: "pos", Type: "ping", Payload: fmt.Sprintf(`{"i":%d}`, i)}}
		if _, err := h.svc.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	var evs []control.Evidence
	if got := h.call("GET", "/v1/evidence?limit=2", "", &evs); got != 200 || len(evs) != 2 || evs[0].TxnID != "TXN2" || evs[1].TxnID != "TXN1" {
		t.Fatalf("evidence: %d %+v", got, evs)
	}
	if got := h.call("GET", "/v1/evidence", "", &evs); got != 200 || len(evs) != 3 || !strings.Contains(evs[2].Disposal, "unknown transaction") {
		t.Fatalf("evidence: %d %+v", got, evs)
	}
	if got := h.call("GET", "/v1/evidence?limit=-1", "", nil); got != 400 {
		t.Errorf("bad limit: %d", got)
	}
}
