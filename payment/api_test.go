package payment

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
