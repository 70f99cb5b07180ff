package main

// The control API against its OpenAPI document, docs/control-api.json:
// every route served is documented and every documented route served,
// and each one answers, for a success and for its documented errors, the
// status codes and JSON shapes the document gives. Machine controllers in
// other languages generate their clients from that document.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

// apiNotProvoked lists documented statuses the sim board cannot be made
// to answer, with the reason.
var apiNotProvoked = map[string]string{
	"POST /v1/pair/print 503":               "the sim board's printer is always there",
	"POST /v1/sim/buttons/{name}/press 503": "the sim board's pins are always there to drive",
	"GET /v1/mdb/trace 200":                 "this kiosk has no [mdb]; TestMDBTraceThroughDaemon holds the stream's lines to the document",
	"GET /v1/mdb/trace 429":                 "five streams at once; control's TestMDBTraceLimit",
	"POST /v1/update 202":                   "installs a bundle; TestUpdateMatchesOpenAPI, with a fake rauc",
	"POST /v1/update 409":                   "an update already running; TestUpdateMatchesOpenAPI",
}

// apiCall is one request the test makes and the status it expects.
type apiCall struct {
	op     string // the documented operation, "POST /v1/payments/{id}/cancel"
	path   string // the request's path and query
	key    string // Idempotency-Key, if any
	body   string
	status int
}

type apiTester struct {
	t    *testing.T
	doc  *apiDoc
	hc   *http.Client
	seen map[string]bool // "METHOD /path STATUS" answered as documented
}

func (a *apiTester) do(c apiCall) []byte {
	a.t.Helper()
	t := a.t
	if a.doc.op(c.op) == nil {
		t.Fatalf("%s is not in the document", c.op)
	}
	code := strconv.Itoa(c.status)
	resp := a.doc.response(c.op, code)
	if resp == nil {
		t.Fatalf("%s: status %s is not documented", c.op, code)
	}
	u, err := url.Parse(c.path)
	if err != nil {
		t.Fatal(err)
	}
	for q := range u.Query() {
		if !slices.Contains(a.doc.params(c.op, "query"), q) {
			t.Errorf("%s: query parameter %q is not documented", c.op, q)
		}
	}
	if c.key != "" && !slices.Contains(a.doc.params(c.op, "header"), control.HeaderIdempotencyKey) {
		t.Errorf("%s: header %s is not documented", c.op, control.HeaderIdempotencyKey)
	}
	if s := a.doc.requestSchema(c.op); s != nil && c.status < 300 {
		v, err := decodeJSON([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: request body %q: %v", c.op, c.body, err)
		}
		for _, e := range a.doc.check("request", s, v) {
			t.Errorf("%s %s: %s", c.op, c.body, e)
		}
	}
	method, _, _ := strings.Cut(c.op, " ")
	req, err := http.NewRequest(method, "http://kioskd"+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set(control.HeaderIdempotencyKey, c.key)
	}
	r, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, c.path, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != c.status {
		t.Fatalf("%s %s %s: %s %s, want %d", method, c.path, c.body, r.Status, b, c.status)
	}
	a.seen[c.op+" "+code] = true
	content, _ := resp["content"].(map[string]any)
	mt, _ := content["application/json"].(map[string]any)
	schema, _ := mt["schema"].(map[string]any)
	if schema == nil {
		return b
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, c.path, ct)
	}
	v, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", method, c.path, err, b)
	}
	for _, e := range a.doc.check("body", schema, v) {
		t.Errorf("%s %s %d: %s", method, c.path, c.status, e)
	}
	return b
}

func (a *apiTester) txn(c apiCall) payment.Txn {
	a.t.Helper()
	var tx payment.Txn
	if err := json.Unmarshal(a.do(c), &tx); err != nil {
		a.t.Fatalf("%s: %v", c.op, err)
	}
	return tx
}

// events checks GET /v1/events: a text/event-stream whose first event
// (the present state: the link) holds to the document's x-data-schema.
func (a *apiTester) events() {
	t := a.t
	const op = "GET /v1/events"
	mt := a.doc.response(op, "200")["content"].(map[string]any)["text/event-stream"].(map[string]any)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://kioskd/v1/events", nil)
	r, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s: %s %q", op, r.Status, r.Header.Get("Content-Type"))
	}
	a.seen[op+" 200"] = true
	sc := bufio.NewScanner(r.Body)
	kind := ""
	for sc.Scan() {
		line := sc.Text()
		if k, ok := strings.CutPrefix(line, "event: "); ok {
			kind = k
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		v, err := decodeJSON([]byte(data))
		if err != nil {
			t.Fatalf("%s: %v: %s", op, err, data)
		}
		for _, e := range a.doc.check("event", mt["x-data-schema"].(map[string]any), v) {
			t.Errorf("%s: %s", op, e)
		}
		if got := v.(map[string]any)["kind"]; got != kind {
			t.Errorf("%s: event %q carries kind %v", op, kind, got)
		}
		return
	}
	t.Fatalf("%s: no event: %v", op, sc.Err())
}

// waitTxn waits until payment id satisfies ok: subscribe, then look it
// up, then follow the stream, so that no change is missed.
func waitTxn(t *testing.T, k *kiosk, a *apiTester, id string, ok func(payment.Txn) bool) payment.Txn {
	t.Helper()
	ch, stop := k.follow(t)
	defer stop()
	if tx := a.txn(apiCall{op: "GET /v1/payments/{id}", path: "/v1/payments/" + id, status: 200}); ok(tx) {
		return tx
	}
	for e := range ch {
		if e.Txn != nil && e.Txn.ID == id && ok(*e.Txn) {
			return *e.Txn
		}
	}
	t.Fatalf("%s: not reached", id)
	return payment.Txn{}
}

func TestE2EControlAPIMatchesOpenAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	doc := loadAPIDoc(t, "../../docs/control-api.json")
	// A payment interrupted by a restart: it comes back flagged for
	// review, which is what settle needs.
	var interrupted string
	// A price button, so that status lists one and it can be pressed.
	k := startKioskConfig(t, testButton, func(dataDir string) {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			t.Fatal(err)
		}
		j, err := payment.OpenJournal(filepath.Join(dataDir, "journal.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		tx := payment.Txn{Provider: "mobypay", Mode: "card", Amount: 300, State: payment.Created, Vend: payment.VendNone}
		if err := j.Create(&tx, time.Now()); err != nil {
			t.Fatal(err)
		}
		interrupted = tx.ID
	})

	served := slices.Sorted(slices.Values(k.routes))
	documented := doc.ops()
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in docs/control-api.json", r)
		}
	}
	for _, o := range documented {
		if !slices.Contains(served, o) {
			t.Errorf("%s is in docs/control-api.json but not served", o)
		}
	}

	sock := filepath.Join(k.dir, "ctl.sock")
	a := &apiTester{t: t, doc: doc, seen: map[string]bool{}, hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}}
	const (
		create = "POST /v1/payments"
		list   = "GET /v1/payments"
		get    = "GET /v1/payments/{id}"
		cancel = "POST /v1/payments/{id}/cancel"
		plan   = "POST /v1/payments/{id}/plan"
		settle = "POST /v1/payments/{id}/settle"
	)
	card := `{"amount":"1.00","mode":"card"}`
	a.do(apiCall{op: create, path: "/v1/payments", body: card, status: 503}) // no terminal yet
	k.sim(t, possim.Approve)

	a.do(apiCall{op: "GET /v1/status", path: "/v1/status", status: 200})
	a.events()
	a.do(apiCall{op: create, path: "/v1/payments", body: `{"amount":"1.005","mode":"card"}`, status: 400})
	tx := a.txn(apiCall{op: create, path: "/v1/payments", key: "order-1", body: card, status: 201})
	a.do(apiCall{op: "GET /v1/status", path: "/v1/status", status: 200}) // with a payment in progress
	waitTxn(t, k, a, tx.ID, control.Over)
	a.do(apiCall{op: create, path: "/v1/payments", key: "order-1", body: card, status: 200})
	a.do(apiCall{op: create, path: "/v1/payments", key: "order-1", body: `{"amount":"2.00","mode":"card"}`, status: 409})
	a.do(apiCall{op: list, path: "/v1/payments", status: 200})
	a.do(apiCall{op: list, path: "/v1/payments?limit=x", status: 400})
	a.do(apiCall{op: get, path: "/v1/payments/" + tx.ID, status: 200})
	a.do(apiCall{op: get, path: "/v1/payments/" + tx.ID + "?evidence=1", status: 200})
	a.do(apiCall{op: get, path: "/v1/payments/TXN0", status: 404})
	a.do(apiCall{op: cancel, path: "/v1/payments/" + tx.ID + "/cancel", status: 409})
	a.do(apiCall{op: cancel, path: "/v1/payments/TXN0/cancel", status: 404})
	a.do(apiCall{op: plan, path: "/v1/payments/" + tx.ID + "/plan", body: `{"plan_id":"x"}`, status: 409})

	offered := func(t payment.Txn) bool { return t.State == payment.PlansOffered }
	ipp := `{"amount":"2.00","mode":"ipp"}`
	tx = a.txn(apiCall{op: create, path: "/v1/payments", body: ipp, status: 201})
	tx = waitTxn(t, k, a, tx.ID, offered)
	a.do(apiCall{op: "GET /v1/status", path: "/v1/status", status: 200}) // current with plans
	a.do(apiCall{op: plan, path: "/v1/payments/" + tx.ID + "/plan", body: `{"plan":"x"}`, status: 400})
	a.do(apiCall{op: plan, path: "/v1/payments/" + tx.ID + "/plan", body: fmt.Sprintf(`{"plan_id":%q}`, tx.Plans[0].ID), status: 200})
	waitTxn(t, k, a, tx.ID, control.Over)
	a.do(apiCall{op: get, path: "/v1/payments/" + tx.ID, status: 200}) // with plans
	tx = a.txn(apiCall{op: create, path: "/v1/payments", body: ipp, status: 201})
	waitTxn(t, k, a, tx.ID, offered)
	a.do(apiCall{op: cancel, path: "/v1/payments/" + tx.ID + "/cancel", status: 200})
	waitTxn(t, k, a, tx.ID, control.Over)

	settlePath := "/v1/payments/" + interrupted + "/settle"
	a.do(apiCall{op: settle, path: settlePath, body: `{"note":""}`, status: 400})
	a.do(apiCall{op: "GET /v1/reviews", path: "/v1/reviews", status: 200})
	a.do(apiCall{op: settle, path: settlePath, body: `{"note":"refunded RM 3.00 in cash"}`, status: 200})
	a.do(apiCall{op: settle, path: settlePath, body: `{"note":"again"}`, status: 409})
	a.do(apiCall{op: settle, path: "/v1/payments/TXN0/settle", body: `{"note":"x"}`, status: 404})
	a.do(apiCall{op: "GET /v1/reviews", path: "/v1/reviews?all=1", status: 200})
	a.do(apiCall{op: "GET /v1/evidence", path: "/v1/evidence", status: 200})
	a.do(apiCall{op: "GET /v1/evidence", path: "/v1/evidence?limit=-1", status: 400})
	a.do(apiCall{op: "GET /v1/quarantine", path: "/v1/quarantine", status: 200})
	a.do(apiCall{op: "POST /v1/selftest", path: "/v1/selftest", status: 200})
	a.do(apiCall{op: "POST /v1/pair/print", path: "/v1/pair/print", status: 200})
	a.do(apiCall{op: "GET /v1/logs", path: "/v1/logs?n=5", status: 200})
	a.do(apiCall{op: "GET /v1/health", path: "/v1/health?min_up=0s", status: 200})
	a.do(apiCall{op: "GET /v1/health", path: "/v1/health?min_up=soon", status: 400})
	a.do(apiCall{op: "POST /v1/update", path: "/v1/update", body: `{"bundle":"update.raucb"}`, status: 400})
	a.do(apiCall{op: "GET /v1/mdb/trace", path: "/v1/mdb/trace?last=-1", status: 400})
	a.do(apiCall{op: "GET /v1/mdb/trace", path: "/v1/mdb/trace?follow=0", status: 404}) // [mdb] off
	const press = "POST /v1/sim/buttons/{name}/press"
	a.do(apiCall{op: press, path: "/v1/sim/buttons/nope/press", status: 404})
	a.do(apiCall{op: press, path: "/v1/sim/buttons/coffee/press", status: 200})
	a.do(apiCall{op: "GET /v1/status", path: "/v1/status", status: 200}) // a button pressed

	// Every documented status was answered, success and errors alike.
	for _, o := range documented {
		for _, code := range doc.statuses(o) {
			if !a.seen[o+" "+code] && apiNotProvoked[o+" "+code] == "" {
				t.Errorf("%s %s is documented but this test never provoked it", o, code)
			}
		}
	}
}
