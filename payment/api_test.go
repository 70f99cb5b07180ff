package payment

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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
	return send(t, c, req, out)
}

// send does req and decodes the answer into out (if not nil).
func send(t *testing.T, c *http.Client, req *http.Request, out any) int {
	t.Helper()
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

// post sends POST /v1/payments with the Idempotency-Key header values
// given (none: no header).
func post(t *testing.T, c *http.Client, body string, out any, keys ...string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://kioskd/v1/payments", strings.NewReader(body))
	for _, k := range keys {
		req.Header.Add("Idempotency-Key", k)
	}
	return send(t, c, req, out)
}

func (h *harness) nothingSent() {
	h.t.Helper()
	select {
	case s := <-h.prov.sent:
		h.t.Fatalf("sent %+v", s)
	default:
	}
}

// Defect 6: a controller that retries with the same Idempotency-Key gets
// the payment it made, never a second charge, across a restart.
func TestAPIIdempotencyKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	h, _, stop := startAt(t, fastConfig(), path)
	c := apiClient(t, h)

	var first Txn
	if got := post(t, c, `{"amount":"12.50","mode":"card"}`, &first, "ORDER-1"); got != 201 || first.Key != "ORDER-1" || first.State != Sent {
		t.Fatalf("create: %d %+v", got, first)
	}
	h.expectSent("request")
	var again Txn
	if got := post(t, c, `{"amount":"12.50","mode":"card"}`, &again, "ORDER-1"); got != 200 || again.ID != first.ID {
		t.Fatalf("retry while in progress: %d %+v", got, again)
	}
	h.nothingSent()
	// A key another provider's payment has (this service has no kpos).
	if err := h.j.Create(&Txn{Provider: "kpos", Mode: "card", Amount: 1250, State: Declined, Key: "ORDER-K"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string][2]string{
		"amount":   {"ORDER-1", `{"amount":"12.51","mode":"card"}`},
		"mode":     {"ORDER-1", `{"amount":"12.50","mode":"bnpl"}`},
		"provider": {"ORDER-K", `{"amount":"12.50","mode":"card"}`},
	} {
		var e map[string]string
		if got := post(t, c, req[1], &e, req[0]); got != 409 || !strings.Contains(e["error"], "different payment") {
			t.Errorf("same key, other %s: %d %v, want 409", name, got, e)
		}
	}
	if got := post(t, c, `{"amount":"1.00","mode":"card"}`, nil); got != 409 {
		t.Errorf("no key while busy: %d, want 409", got)
	}
	for name, keys := range map[string][]string{
		"empty": {""}, "too long": {strings.Repeat("k", 65)}, "tab": {"a\tb"},
		"not ascii": {"ordér"}, "twice": {"a", "b"},
	} {
		var e map[string]string
		if got := post(t, c, `{"amount":"1.00","mode":"card"}`, &e, keys...); got != 400 || e["error"] == "" {
			t.Errorf("key %s: %d %v, want 400", name, got, e)
		}
	}
	h.nothingSent()
	h.svc.Report(Report{TxnID: first.ID, Kind: ReportDeclined, Message: "DECLINED"})
	h.state(first.ID, Declined)
	// Finished: the key still names that payment (a new attempt needs a
	// new key).
	if got := post(t, c, `{"amount":"12.50","mode":"card"}`, &again, "ORDER-1"); got != 200 || again.ID != first.ID || again.State != Declined {
		t.Fatalf("retry after the outcome: %d %+v", got, again)
	}

	stop()
	h, _, _ = startAt(t, fastConfig(), path)
	c = apiClient(t, h)
	if got := post(t, c, `{"amount":"12.50","mode":"card"}`, &again, "ORDER-1"); got != 200 || again.ID != first.ID || again.State != Declined {
		t.Fatalf("retry after a restart: %d %+v", got, again)
	}
	if got := post(t, c, `{"amount":"9.00","mode":"card"}`, nil, "ORDER-1"); got != 409 {
		t.Errorf("mismatch after a restart: %d, want 409", got)
	}
	h.nothingSent()
	var second Txn
	if got := post(t, c, `{"amount":"12.50","mode":"card"}`, &second, "ORDER-2"); got != 201 || second.ID == first.ID {
		t.Fatalf("new key: %d %+v", got, second)
	}
	h.expectSent("request")
	if list, _ := h.j.List(0); len(list) != 3 {
		t.Errorf("journal holds %d payments, want 3", len(list))
	}
}

// Concurrent requests with one key over the real socket make exactly one
// payment: the key is looked up and journaled on the service loop.
func TestAPIConcurrentSameKey(t *testing.T) {
	h := start(t, fastConfig())
	c := apiClient(t, h)
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
			req.Header.Set("Idempotency-Key", "ORDER-RACE")
			resp, err := c.Do(req)
			if err != nil {
				answers <- answer{code: -1, id: err.Error()}
				return
			}
			defer resp.Body.Close()
			var tx Txn
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
func TestAPIUnknownEvidence(t *testing.T) {
	h := start(t, fastConfig())
	c := apiClient(t, h)
	for i := range 3 {
		r := Report{TxnID: fmt.Sprintf("TXN%d", i), Kind: ReportOther, Evidence: Evidence{Source: "pos", Type: "ping", Payload: fmt.Sprintf(`{"i":%d}`, i)}}
		if _, err := h.svc.Record(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	var evs []Evidence
	if got := call(t, c, "GET", "/v1/evidence?limit=2", "", &evs); got != 200 || len(evs) != 2 || evs[0].TxnID != "TXN2" || evs[1].TxnID != "TXN1" {
		t.Fatalf("evidence: %d %+v", got, evs)
	}
	if got := call(t, c, "GET", "/v1/evidence", "", &evs); got != 200 || len(evs) != 3 || !strings.Contains(evs[2].Disposal, "unknown transaction") {
		t.Fatalf("evidence: %d %+v", got, evs)
	}
	if got := call(t, c, "GET", "/v1/evidence?limit=-1", "", nil); got != 400 {
		t.Errorf("bad limit: %d", got)
	}
}
