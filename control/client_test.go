package control

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// serveSocket serves h on a unix socket and returns a client of it.
func serveSocket(t *testing.T, h http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return NewClient(sock)
}

func TestClientErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderIdempotencyKey) != "order-7" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"no key"}`)
			return
		}
		io.WriteString(w, `{"txn_id":"TXN1","amount":"1.00","state":"approved"}`)
	})
	mux.HandleFunc("GET /v1/payments/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"txn_id":"TXN1","amount":1.005}`)
	})
	c := serveSocket(t, mux)
	ctx := context.Background()

	tx, created, err := c.Pay(ctx, PayRequest{Amount: "1.00", Mode: "card"}, "order-7")
	if err != nil || created || tx.ID != "TXN1" || tx.Amount != 100 {
		t.Errorf("Pay: %+v created=%v %v; want TXN1 answered 200, not created", tx, created, err)
	}
	_, _, err = c.Pay(ctx, PayRequest{Amount: "1.00", Mode: "card"}, "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusBadRequest || ae.Msg != "no key" || !Answered(err) {
		t.Errorf("refusal: %v, want *APIError 400 \"no key\"", err)
	}
	_, err = c.Payment(ctx, "TXN1")
	var de *DecodeError
	if !errors.As(err, &de) || len(de.Raw) == 0 || !Answered(err) {
		t.Errorf("undecodable answer: %v, want *DecodeError with the raw answer", err)
	}

	gone := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err = gone.Status(ctx)
	var na *NoAnswerError
	if !errors.As(err, &na) || !SentNothing(err) || Answered(err) {
		t.Errorf("no daemon: %v, want *NoAnswerError that sent nothing", err)
	}
}

func TestClientEvents(t *testing.T) {
	c := serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": keep-alive\n\nevent: payment\ndata: {\"kind\":\"payment\",\"txn\":{\"txn_id\":\"TXN1\",\"amount\":\"x\"}}\n\n"+
			"event: pos\ndata: {\"kind\":\"pos\",\"at\":\"2026-12-01T10:00:00Z\",\"pos\":{\"provider\":\"mobypay\",\"state\":\"connected\"}}\n\n")
	}))
	ctx := context.Background()
	s, err := c.Events(ctx, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []StreamItem
	for it := range s.C {
		got = append(got, it)
	}
	if len(got) != 2 || got[0].Err == nil || got[0].Kind != "payment" || got[0].TxnID != "TXN1" ||
		got[1].Err != nil || got[1].Event.POS == nil || got[1].Event.POS.State != "connected" {
		t.Fatalf("items %+v", got)
	}
	if err := s.Err(); err != nil || !s.Dead() {
		t.Errorf("ended stream: err %v, dead %v", err, s.Dead())
	}
}
