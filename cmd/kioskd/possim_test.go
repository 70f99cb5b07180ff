package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/internal/cli"
	"github.com/kioskd/kioskd/protocol/mobypay"
)

func TestPossimUsage(t *testing.T) {
	cases := [][]string{
		{"possim"},
		{"possim", "-addr", "127.0.0.1:1", "extra"},
		{"possim", "-addr", "127.0.0.1:1", "-behaviour", "aprove", "-secret", "k"},
		{"possim", "-addr", "127.0.0.1:1", "-secret", "a", "-secret-file", "b"},
		{"possim", "-nope"},
	}
	for _, args := range cases {
		if code, _, errs := kioskd(t, "", args...); code != exitUsage {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, errs)
		}
	}
	code, _, errs := kioskd(t, "", "possim", "-h")
	if code != exitOK || !strings.Contains(errs, "cancel-late") || !strings.Contains(errs, "-behaviour") {
		t.Errorf("-h: exit %d\n%s", code, errs)
	}
}

// posHandler forwards what a kiosk-side server hears.
type posHandler struct {
	msgs   chan mobypay.Message
	states chan mobypay.ConnState
}

func (h *posHandler) Message(m *mobypay.Message)              { h.msgs <- *m }
func (h *posHandler) Late(*mobypay.Message, error)            {}
func (h *posHandler) ConnState(s mobypay.ConnState, _ string) { h.states <- s }

func TestPossimAgainstServer(t *testing.T) {
	const secret = "cli-test-secret"
	h := &posHandler{make(chan mobypay.Message, 16), make(chan mobypay.ConnState, 16)}
	srv, err := mobypay.NewServer(mobypay.ServerConfig{Addr: "127.0.0.1:0", Secret: []byte(secret)}, h)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(t.Context()) }()
	t.Cleanup(func() {
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runPossim(ctx, &cli.Env{Stdout: &bytes.Buffer{}, Stderr: &stderr},
			[]string{"-addr", srv.Addr().String(), "-secret", secret, "-behaviour", "decline", "-pos-id", "POS042"})
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-h.states:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	wait("connection")
	codec := mobypay.NewCodec([]byte(secret))
	req, err := codec.AppendTransactionRequest(nil, mobypay.Header{
		TxnID: "TXN1", KioskID: "KIOSK001", Nonce: rand.Text(), Timestamp: time.Now().UnixMilli(),
	}, 1250, mobypay.ModeCard)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Send(req); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case m := <-h.msgs:
			if m.PosID != "POS042" {
				t.Errorf("pos_id %q", m.PosID)
			}
			got = append(got, m.Type+" "+m.Status)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out; got %q", got)
		}
	}
	if got[0] != "ack processing" || got[1] != "transaction_result failed" {
		t.Errorf("messages %q", got)
	}
	stop()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("possim did not stop")
	}
	for _, want := range []string{"possim starting", "msg=connected", "msg=sent", "type=transaction_request"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
	wait("disconnection")
}
