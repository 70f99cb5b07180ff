package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control/controltest"
	"github.com/kioskd/kioskd/payment"
)

// TestPayDaemonDiesBeforeAnswering is the regression test for a
// controller charging twice: the daemon took the request (it may have
// sent it to the terminal) and died before answering. pay used to say
// "not reachable" and exited as for nothing sent, which a controller
// retries; the outcome is unknown, so it must exit 3.
func TestPayDaemonDiesBeforeAnswering(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.PostThenDie})
	r := waitPay(t, startPay("-amount", "12.50", "-control", f.Socket()))
	r.check(t, exitUnclear, nil, []string{"got no answer", "outcome is unknown", "kioskd journal", "-key ORDER_ID"})
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing: there is no txn id to report", r.stdout)
	}
}

// TestPayKeyAsksAgainAfterLostAnswer: with -key the same request is
// repeated once the daemon is back, and its 200 (the payment already
// made under that key) is followed to the outcome.
func TestPayKeyAsksAgainAfterLostAnswer(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.PostThenDie})
	res := startPay("-amount", "12.50", "-key", "ORDER-7", "-timeout", "20s", "-control", f.Socket())
	if k := f.WaitKey(); k != "ORDER-7" {
		t.Fatalf("first request's Idempotency-Key %q", k)
	}
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusOK, controltest.Txn("TXN1", payment.Approved, payment.VendReleased))})
	if k := f.WaitKey(); k != "ORDER-7" {
		t.Fatalf("repeated request's Idempotency-Key %q", k)
	}
	waitPay(t, res).check(t, exitOK,
		[]string{`TXN1 card RM 12.50: approved (already made for key "ORDER-7")`, "approved TXN1 card RM 12.50 vend=released"},
		[]string{"got no answer", `asking again with the same key "ORDER-7"`})
}

// TestPayKeyExistingPayment: a 200 is the payment already made for the
// key, followed like a new one; one already over ends pay at once.
func TestPayKeyExistingPayment(t *testing.T) {
	t.Parallel()
	t.Run("in progress", func(t *testing.T) {
		t.Parallel()
		f := controltest.New(t)
		f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusOK, controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
		res := startPay("-amount", "12.50", "-key", "ORDER-8", "-control", f.Socket())
		feed := f.Subscriber()
		if k := f.WaitKey(); k != "ORDER-8" {
			t.Fatalf("Idempotency-Key %q", k)
		}
		feed.Payment(controltest.Txn("TXN9", payment.Declined, payment.VendNone)) // another payment's
		feed.Payment(controltest.Txn("TXN1", payment.Approved, payment.VendReleased))
		waitPay(t, res).check(t, exitOK, []string{`acked (already made for key "ORDER-8")`, "TXN1: approved\n", "approved TXN1"}, nil)
	})
	t.Run("over", func(t *testing.T) {
		t.Parallel()
		f := controltest.New(t)
		f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusOK, controltest.Txn("TXN1", payment.Declined, payment.VendNone))})
		r := waitPay(t, startPay("-amount", "12.50", "-key", "ORDER-9", "-json", "-control", f.Socket()))
		r.check(t, exitDeclined, []string{`"state":"declined"`}, []string{`declined (already made for key "ORDER-9")`})
	})
	t.Run("no key sent without -key", func(t *testing.T) {
		t.Parallel()
		f := controltest.New(t)
		f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Approved, payment.VendReleased))})
		waitPay(t, startPay("-amount", "12.50", "-control", f.Socket())).check(t, exitOK, nil, nil)
		if k := f.WaitKey(); k != "" {
			t.Errorf("Idempotency-Key %q sent without -key", k)
		}
	})
}

// TestPayDaemonDiesAfterAccepting: the daemon answered with a txn id and
// died for good. pay looks for it until -timeout, then reports the txn
// id and its last known state and exits 3, never 2.
func TestPayDaemonDiesAfterAccepting(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.AcceptThenDie})
	r := waitPay(t, startPay("-amount", "12.50", "-timeout", "1s", "-control", f.Socket()))
	r.check(t, exitUnclear, []string{"TXN1 card RM 12.50: acked", "acked TXN1 card RM 12.50"},
		[]string{"lost contact with the daemon", "no outcome within -timeout 1s", "TXN1 was last known as acked", "may still complete", "kioskd journal", "kioskd cancel TXN1"})
}

// TestPayReconnectWindow: without -timeout the look-up after losing the
// daemon is still bounded, by reconnectWindow. Not parallel: it
// shortens the window.
func TestPayReconnectWindow(t *testing.T) {
	old := reconnectWindow
	reconnectWindow = 500 * time.Millisecond
	t.Cleanup(func() { reconnectWindow = old })
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.AcceptThenDie})
	r := waitPay(t, startPay("-amount", "12.50", "-timeout", "0", "-json", "-control", f.Socket()))
	r.check(t, exitUnclear, []string{`"txn_id":"TXN1"`, `"state":"acked"`},
		[]string{"did not answer again within 500ms", "TXN1 was last known as acked", "may still complete"})
}

// TestPayRestartComesBackFinal: the daemon died after accepting and came
// back with the payment over: pay reports that outcome.
func TestPayRestartComesBackFinal(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.AcceptThenDie})
	res := startPay("-amount", "12.50", "-control", f.Socket())
	f.WaitKey()
	f.Up(map[string]http.HandlerFunc{"GET /v1/payments/{id}": f.Get(controltest.Txn("TXN1", payment.Approved, payment.VendReleased))})
	if id := f.WaitGet(); id != "TXN1" {
		t.Fatalf("looked up %q", id)
	}
	waitPay(t, res).check(t, exitOK, []string{"TXN1: approved", "approved TXN1 card RM 12.50 vend=released"},
		[]string{"lost contact with the daemon", "reconnected; TXN1 is approved"})
}

// TestPayRestartComesBackPending: the daemon came back with the payment
// still open. pay used to exit 3 at once; it subscribes again and follows
// the payment to its outcome.
func TestPayRestartComesBackPending(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.AcceptThenDie})
	res := startPay("-amount", "12.50", "-control", f.Socket())
	f.Subscriber() // the first daemon's
	f.WaitKey()
	f.Up(map[string]http.HandlerFunc{"GET /v1/payments/{id}": f.Get(controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
	feed := f.Subscriber()
	f.WaitGet()
	feed.Payment(controltest.Txn("TXN1", payment.Approved, payment.VendReleased))
	waitPay(t, res).check(t, exitOK, []string{"approved TXN1"}, []string{"reconnected; TXN1 is acked"})
}

// TestPayTimeoutDoesNotCancel: a daemon that stays silent. -timeout ends
// the wait with exit 3 and says so; the payment is not cancelled.
func TestPayTimeoutDoesNotCancel(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone))})
	r := waitPay(t, startPay("-amount", "12.50", "-timeout", "300ms", "-control", f.Socket()))
	r.check(t, exitUnclear, []string{"acked TXN1"},
		[]string{"no outcome within -timeout 300ms", "TXN1 was last known as acked", "not cancelled and may still complete", "kioskd journal"})
	if ids := f.Cancels(); len(ids) != 0 {
		t.Errorf("%d cancel requests on timeout", len(ids))
	}
}

// TestPayUndecodableEvent is the regression test for a pay that never
// exited: an event it could not decode was dropped without a word. It is
// reported, and the record is read instead.
func TestPayUndecodableEvent(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{
		"POST /v1/payments":     f.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone)),
		"GET /v1/payments/{id}": f.Get(controltest.Txn("TXN1", payment.Approved, payment.VendReleased)),
	})
	res := startPay("-amount", "12.50", "-control", f.Socket())
	feed := f.Subscriber()
	f.WaitKey()
	feed.Event("payment", `{"kind":"payment","txn":{"amount":"-x"}}`)
	waitPay(t, res).check(t, exitOK, []string{"approved TXN1"}, []string{`cannot decode a "payment" event`, `amount "-x"`, "looking TXN1 up instead"})
}

// TestPayUndecodableRecord: the event and the record both cannot be
// decoded: pay exits 3 with the txn id rather than wait.
func TestPayUndecodableRecord(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{
		"POST /v1/payments":     f.Post(http.StatusCreated, controltest.Txn("TXN1", payment.Acked, payment.VendNone)),
		"GET /v1/payments/{id}": f.Get(json.RawMessage(`{"txn_id":"TXN1","state":"approved","paid_amount":"-x"}`)),
	})
	res := startPay("-amount", "12.50", "-control", f.Socket())
	feed := f.Subscriber()
	f.WaitKey()
	feed.Event("payment", `{"kind":"payment","txn":{"txn_id":"TXN1","paid_amount":"-x"}}`)
	waitPay(t, res).check(t, exitUnclear, []string{"acked TXN1"},
		[]string{`cannot decode a "payment" event about TXN1`, "TXN1 cannot be looked up", "cannot decode the answer to GET /v1/payments/TXN1", "TXN1 was last known as acked"})
}

// TestPayUndecodableAnswer: the daemon accepted the payment but its
// answer cannot be decoded: exit 3 with the txn id it named.
func TestPayUndecodableAnswer(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusCreated, json.RawMessage(`{"txn_id":"TXN1","state":"sent","amount":"-x"}`))})
	r := waitPay(t, startPay("-amount", "12.50", "-control", f.Socket()))
	r.check(t, exitUnclear, nil, []string{"accepted payment TXN1 but its answer cannot be decoded", `amount "-x"`, "kioskd journal"})
}

// TestPayNoAnswerInTime: a daemon slow to answer the request. Without
// -key the outcome is unknown (exit 3, not 2); with -key too, but asking
// again is safe and pay says so.
func TestPayNoAnswerInTime(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "ORDER-5"} {
		t.Run("key="+key, func(t *testing.T) {
			t.Parallel()
			f := controltest.New(t)
			f.Up(map[string]http.HandlerFunc{"POST /v1/payments": func(w http.ResponseWriter, r *http.Request) {
				f.RecordKey(r)
				<-r.Context().Done() // until pay gives up
			}})
			args := []string{"-amount", "12.50", "-timeout", "300ms", "-control", f.Socket()}
			want := []string{"no answer within -timeout 300ms", "kioskd journal"}
			if key == "" {
				want = append(want, "outcome is unknown", "-key ORDER_ID")
			} else {
				args = append(args, "-key", key)
				want = append(want, `no answer for key "ORDER-5"`, "may still complete", "kioskd pay -key ORDER-5` and the same amount is safe")
			}
			r := waitPay(t, startPay(args...))
			r.check(t, exitUnclear, nil, want)
			if k := f.WaitKey(); k != key {
				t.Errorf("Idempotency-Key %q", k)
			}
		})
	}
}

// TestPaySlowLookUp: the daemon came back after accepting but does not
// answer the look-up: -timeout still ends pay, with exit 3.
func TestPaySlowLookUp(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.AcceptThenDie})
	res := startPay("-amount", "12.50", "-timeout", "1s", "-control", f.Socket())
	f.WaitKey()
	f.Up(map[string]http.HandlerFunc{"GET /v1/payments/{id}": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }})
	waitPay(t, res).check(t, exitUnclear, []string{"acked TXN1"}, []string{"no outcome within -timeout 1s", "TXN1 was last known as acked"})
}

// TestPayNotSentExits4: a request that could not even be sent (the
// daemon stopped listening after the event stream opened) made no
// payment: exit 4, safe to retry.
func TestPayNotSentExits4(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"GET /v1/events": func(w http.ResponseWriter, r *http.Request) {
		f.StopListening()
		f.Events(w, r)
	}})
	r := waitPay(t, startPay("-amount", "12.50", "-key", "ORDER-1", "-control", f.Socket()))
	r.check(t, exitUnreachable, nil, []string{"payment refused: kioskd not reachable"})
}

// TestPayKeyRetryRefused: after a lost answer, the repeated request is
// refused (here: POS not connected). The first one's outcome is still
// unknown, so that is exit 3, not the 1 a plain refusal gets.
func TestPayKeyRetryRefused(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.PostThenDie})
	res := startPay("-amount", "12.50", "-key", "ORDER-2", "-timeout", "20s", "-control", f.Socket())
	f.WaitKey()
	f.Up(map[string]http.HandlerFunc{"POST /v1/payments": f.Post(http.StatusServiceUnavailable, map[string]string{"error": "payment: not ready: pos not connected"})})
	waitPay(t, res).check(t, exitUnclear, nil, []string{"pos not connected", "first request's outcome is unknown"})
}

func TestPayFlagsChecked(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-key", strings.Repeat("k", 65)},
		{"-key", "a\x01b"},
		{"-key", " lead"},
		{"-timeout", "-1s"},
	} {
		args = append([]string{"pay", "-amount", "1.00", "-control", "/nonexistent.sock"}, args...)
		if code, _, errs := kioskd(t, "", args...); code != exitUsage {
			t.Errorf("%q: exit %d %s", args, code, errs)
		}
	}
}

// TestJournalUnknown lists GET /v1/evidence one message per line; -json
// passes the daemon's objects on whole.
func TestJournalUnknown(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var limits []string
	var mu sync.Mutex
	list := json.RawMessage(`[` +
		`{"seq":7,"txn_id":"TXN999","at":"` + at.Format(time.RFC3339) + `","source":"pos","type":"transaction_result","status":"success","disposal":"unknown transaction","payload":"{\"amount\":1.0}","nonce":"n1"},` +
		`{"seq":6,"txn_id":"","at":"` + at.Format(time.RFC3339) + `","source":"pos","type":"ping","disposal":"keepalive","payload":"{\"type\":\"ping\"}"}]`)
	f.Up(map[string]http.HandlerFunc{"GET /v1/evidence": func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limits = append(limits, r.URL.Query().Get("limit"))
		mu.Unlock()
		controltest.Answer(w, http.StatusOK, list)
	}})
	code, out, errs := kioskd(t, "", "journal", "-unknown", "-n", "5", "-control", f.Socket())
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	local := at.Local().Format("2006-01-02 15:04:05")
	want := []string{
		local + ` #7 pos transaction_result success txn=TXN999 disposal="unknown transaction" payload={"amount":1.0}`,
		local + ` #6 pos ping txn=- disposal="keepalive" payload={"type":"ping"}`,
	}
	if code != exitOK || len(lines) != 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Fatalf("exit %d %s\n%s\nwant\n%s", code, errs, out, strings.Join(want, "\n"))
	}
	code, out, _ = kioskd(t, "", "journal", "-unknown", "-json", "-control", f.Socket())
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != exitOK || len(lines) != 2 || !strings.Contains(lines[0], `"nonce":"n1"`) || !json.Valid([]byte(lines[1])) {
		t.Fatalf("-json: exit %d\n%s", code, out)
	}
	mu.Lock()
	if strings.Join(limits, ",") != "5,20" {
		t.Errorf("limits asked %v, want 5 then the default 20", limits)
	}
	mu.Unlock()
	f.Die()
	f.Up(map[string]http.HandlerFunc{"GET /v1/evidence": func(w http.ResponseWriter, r *http.Request) {
		controltest.Answer(w, http.StatusOK, json.RawMessage(`[]`))
	}})
	if code, out, _ := kioskd(t, "", "journal", "-unknown", "-control", f.Socket()); code != exitOK || out != "no messages about unknown payments\n" {
		t.Errorf("empty: exit %d %q", code, out)
	}
	// A daemon without the endpoint: its 404 says so.
	f.Die()
	f.Up(nil)
	if code, _, errs := kioskd(t, "", "journal", "-unknown", "-control", f.Socket()); code != exitFail || !strings.Contains(errs, "404") {
		t.Errorf("no endpoint: exit %d %s", code, errs)
	}
}

// TestCancelWithoutTxnID: cancel with no txn id cancels the payment the
// daemon's status names; with none, or when that one ends before the
// cancel arrives, there is nothing to do: exit 0, and it says so. A txn
// id given that is not in progress is still the daemon's refusal.
func TestCancelWithoutTxnID(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	var mu sync.Mutex
	var current *payment.Txn
	var cancelled []string
	ended := false // the payment ends just before its cancel arrives
	f.Up(map[string]http.HandlerFunc{
		"GET /v1/status": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			controltest.Answer(w, http.StatusOK, map[string]any{"current": current})
		},
		"POST /v1/payments/{id}/cancel": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			id := r.PathValue("id")
			cancelled = append(cancelled, id)
			if ended || current == nil || current.ID != id {
				controltest.Answer(w, http.StatusConflict, map[string]string{"error": "payment: transaction is not in progress: " + id + " is approved"})
				return
			}
			controltest.Answer(w, http.StatusOK, controltest.Txn(id, payment.CancelRequested, payment.VendNone))
		},
		"GET /v1/payments/{id}": func(w http.ResponseWriter, r *http.Request) {
			controltest.Answer(w, http.StatusOK, controltest.Txn(r.PathValue("id"), payment.Approved, payment.VendReleased))
		},
	})
	set := func(cur *payment.Txn, end bool) {
		mu.Lock()
		defer mu.Unlock()
		current, ended, cancelled = cur, end, nil
	}
	acked := controltest.Txn("TXN7", payment.Acked, payment.VendNone)
	for _, tc := range []struct {
		name      string
		cur       *payment.Txn
		ended     bool
		args      []string
		code      int
		out       string
		cancelled string
	}{
		{"in progress", &acked, false, nil, exitOK, "cancel_requested TXN7 card RM 12.50\n", "TXN7"},
		{"none", nil, false, nil, exitOK, "no payment in progress\n", ""},
		{"ended first", &acked, true, nil, exitOK, "no payment in progress (TXN7 ended before the cancel): approved TXN7 card RM 12.50 vend=released\n", "TXN7"},
		{"named", &acked, false, []string{"TXN7"}, exitOK, "cancel_requested TXN7 card RM 12.50\n", "TXN7"},
		{"named, not in progress", nil, false, []string{"TXN6"}, exitFail, "", "TXN6"},
	} {
		set(tc.cur, tc.ended)
		code, out, errs := kioskd(t, "", append([]string{"cancel", "-control", f.Socket()}, tc.args...)...)
		mu.Lock()
		got := strings.Join(cancelled, ",")
		mu.Unlock()
		if code != tc.code || out != tc.out || got != tc.cancelled {
			t.Errorf("%s: exit %d %q, cancelled %q; want exit %d %q, cancelled %q\n%s", tc.name, code, out, got, tc.code, tc.out, tc.cancelled, errs)
		}
	}
}

// TestClientExitCodes: a daemon gone in the middle of its answer is "no
// answer" (4), like one that is not there; an answer that cannot be read
// is the daemon's failure (1), not the command line's (2).
func TestClientExitCodes(t *testing.T) {
	t.Parallel()
	f := controltest.New(t)
	f.Up(map[string]http.HandlerFunc{
		"GET /v1/status": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"kiosk_id":`)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection closes mid-answer
		},
		"GET /v1/logs": func(w http.ResponseWriter, r *http.Request) {
			controltest.Answer(w, http.StatusOK, map[string]string{"not": "a list"})
		},
	})
	if code, _, errs := kioskd(t, "", "status", "-control", f.Socket()); code != exitUnreachable || !strings.Contains(errs, "went away while answering") {
		t.Errorf("status cut off: exit %d %s", code, errs)
	}
	if code, _, errs := kioskd(t, "", "logs", "-control", f.Socket()); code != exitFail || !strings.Contains(errs, "cannot decode") {
		t.Errorf("logs undecodable: exit %d %s", code, errs)
	}
}
