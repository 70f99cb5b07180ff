package payment

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// apiClient serves the API on a real unix socket and returns a client for it.
func apiClient(t *testing.T, h *harness) *http.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewAPI(h.svc).Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
}

func call(t *testing.T, c *http.Client, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://kioskd"+path, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func TestAPI(t *testing.T) {
	h := start(t, fastConfig())
	c := apiClient(t, h)

	// Subscribe first: the stream must show the whole payment.
	req, _ := http.NewRequest("GET", "http://kioskd/v1/events", nil)
	stream, err := (&http.Client{Transport: c.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := make(chan Event, 32)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e Event
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
	for name, c2 := range codes {
		var e map[string]string
		if got := call(t, c, "POST", "/v1/payments", c2.body, &e); got != c2.want || e["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", name, got, e, c2.want)
		}
	}
	h.prov.ready.Store(false)
	if got := call(t, c, "POST", "/v1/payments", `{"amount":"1.00","mode":"card"}`, nil); got != 503 {
		t.Errorf("POS not connected: %d, want 503", got)
	}
	h.prov.ready.Store(true)

	var tx Txn
	if got := call(t, c, "POST", "/v1/payments", `{"amount":"12.50","mode":"ipp"}`, &tx); got != 201 || tx.State != Sent || tx.Amount != 1250 {
		t.Fatalf("create: %d %+v", got, tx)
	}
	h.expectSent("request")
	if got := call(t, c, "POST", "/v1/payments", `{"amount":"1.00","mode":"card"}`, nil); got != 409 {
		t.Errorf("second payment: %d, want 409", got)
	}
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportPlans, Plans: []Plan{{ID: "a"}, {ID: "b"}}})
	h.state(tx.ID, PlansOffered)
	if got := call(t, c, "POST", "/v1/payments/"+tx.ID+"/plan", `{"plan_id":"zz"}`, nil); got != 400 {
		t.Errorf("unoffered plan: %d", got)
	}
	if got := call(t, c, "POST", "/v1/payments/"+tx.ID+"/plan", `{"plan_id":"b"}`, nil); got != 200 {
		t.Errorf("plan: %d", got)
	}
	h.expectSent("plan")
	var st map[string]json.RawMessage
	if got := call(t, c, "GET", "/v1/status", "", &st); got != 200 || !strings.Contains(string(st["current"]), tx.ID) {
		t.Errorf("status: %d %s", got, st["current"])
	}
	if got := call(t, c, "POST", "/v1/payments/"+tx.ID+"/cancel", "", nil); got != 200 {
		t.Errorf("cancel: %d", got)
	}
	h.expectSent("cancel")
	h.svc.Report(Report{TxnID: tx.ID, Kind: ReportDeclined, Message: "USER_ABORT", Evidence: Evidence{Type: "transaction_result", Payload: `{"x":1}`}})
	h.state(tx.ID, Cancelled)
	if got := call(t, c, "POST", "/v1/payments/"+tx.ID+"/cancel", "", nil); got != 409 {
		t.Errorf("cancel of a finished payment: %d, want 409", got)
	}
	if got := call(t, c, "GET", "/v1/payments/TXN1", "", nil); got != 404 {
		t.Errorf("unknown: %d", got)
	}
	var withEv struct {
		Txn
		Messages []Evidence `json:"messages"`
	}
	if got := call(t, c, "GET", "/v1/payments/"+tx.ID+"?evidence=1", "", &withEv); got != 200 || len(withEv.Messages) != 2 || withEv.Messages[1].Payload != `{"x":1}` {
		t.Errorf("evidence: %d %+v", got, withEv.Messages)
	}
	var list []Txn
	if got := call(t, c, "GET", "/v1/payments?limit=5", "", &list); got != 200 || len(list) != 1 || list[0].Amount.String() != "12.50" {
		t.Errorf("list: %d %+v", got, list)
	}

	// The stream saw the link, then each step of the payment in order.
	var states []State
	deadline := time.After(10 * time.Second)
	for len(states) == 0 || states[len(states)-1] != Cancelled {
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
	want := []State{Sent, PlansOffered, PlanSelected, CancelRequested, Cancelled}
	if len(states) != len(want) {
		t.Fatalf("stream states %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("stream states %v, want %v", states, want)
		}
	}
}

// startAt is start on the journal file at path, recovered first as kioskd
// run does; stop ends the service and closes the journal, so that a test
// can start again on the same file (a restart).
func startAt(t *testing.T, cfg Config, path string) (h *harness, recovered []Txn, stop func()) {
	t.Helper()
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if recovered, err = j.Recover(time.Now()); err != nil {
		j.Close()
		t.Fatal(err)
	}
	h = &harness{t: t, prov: &fakeProvider{sent: make(chan sent, 16)}, vend: &fakeVender{}, print: &fakePrinter{}, j: j}
	h.prov.ready.Store(true)
	h.svc = NewService(cfg, j, h.vend, h.print, h.prov)
	ev, unsub := h.svc.Subscribe()
	h.events = ev
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; unsub(); j.Close() }) }
	t.Cleanup(stop)
	return h, recovered, stop
}

// Defect 1 through the API: undecodable records are quarantined at start
// and listed for review; nothing answers 500 without saying why.
func TestAPIQuarantine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	good := newTxn(t, j, t0)
	j.Update(good.ID, t0, nil, func(t *Txn) error { t.State = Declined; return nil })
	j.Close()
	const bad = "TXN1757492341001"
	writeRaw(t, path, "txns", bad, brokenRecords[bad])

	h, recovered, _ := startAt(t, fastConfig(), path)
	if len(recovered) != 1 || recovered[0].ID != bad || !recovered[0].Quarantined {
		t.Fatalf("recovered %+v", recovered)
	}
	c := apiClient(t, h)
	var list []Txn
	if got := call(t, c, "GET", "/v1/payments", "", &list); got != 200 || len(list) != 1 || list[0].ID != good.ID {
		t.Fatalf("list: %d %+v", got, list)
	}
	var e map[string]string
	if got := call(t, c, "GET", "/v1/payments/"+bad, "", &e); got != 500 || !strings.Contains(e["error"], "cannot be decoded") {
		t.Errorf("get of a quarantined record: %d %v", got, e)
	}
	var reviews []Txn
	if got := call(t, c, "GET", "/v1/reviews", "", &reviews); got != 200 || len(reviews) != 1 || reviews[0].ID != bad ||
		!reviews[0].Quarantined || reviews[0].State != Unknown || !strings.HasPrefix(reviews[0].Review, "quarantined: ") {
		t.Fatalf("reviews: %d %+v", got, reviews)
	}
	var quar []Quarantined
	if got := call(t, c, "GET", "/v1/quarantine", "", &quar); got != 200 || len(quar) != 1 || string(quar[0].Raw) != string(brokenRecords[bad]) {
		t.Fatalf("quarantine: %d %+v", got, quar)
	}
	var settled Txn
	if got := call(t, c, "POST", "/v1/payments/"+bad+"/settle", `{"note":"journal copied off for support"}`, &settled); got != 200 || settled.Settled == "" {
		t.Fatalf("settle: %d %+v", got, settled)
	}
	if got := call(t, c, "GET", "/v1/reviews", "", &reviews); got != 200 || len(reviews) != 0 {
		t.Errorf("reviews after settle: %d %+v", got, reviews)
	}
	if got := call(t, c, "GET", "/v1/reviews?all=1", "", &reviews); got != 200 || len(reviews) != 1 || reviews[0].Settled == "" {
		t.Errorf("reviews?all=1: %d %+v", got, reviews)
	}

	// A record that goes bad while running is skipped and listed too.
	const worse = "TXN1757492341002"
	h.j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketTxns).Put([]byte(worse), brokenRecords[worse]) })
	if got := call(t, c, "GET", "/v1/payments", "", &list); got != 200 || len(list) != 1 {
		t.Errorf("list with a bad record: %d %+v", got, list)
	}
	if got := call(t, c, "GET", "/v1/reviews", "", &reviews); got != 200 || len(reviews) != 1 || reviews[0].ID != worse || !reviews[0].Quarantined {
		t.Errorf("reviews with a bad record: %d %+v", got, reviews)
	}
}
