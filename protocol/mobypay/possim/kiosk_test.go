package possim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/mobypay"
	"github.com/kioskd/kioskd/protocol/mobypay/internal/mobypaytest"
)

// The simulator against the kiosk's real server, behaviour by behaviour:
// what each behaviour sends, and what the server makes of it. These tests
// live here rather than in mobypay because mobypay cannot import its own
// simulator.

// connected starts a server and a simulator and waits for the link.
func connected(t *testing.T, behaviour Behaviour, scfg mobypay.ServerConfig) (*mobypay.Server, *recHandler, <-chan Event, *kiosk) {
	t.Helper()
	srv, rec := startServer(t, scfg)
	ev := startSim(t, Config{Addr: srv.Addr().String(), Behaviour: behaviour, Delay: 20 * time.Millisecond})
	awaitState(t, rec, mobypay.Connected)
	awaitSim(t, ev, "connected", simKind(Connected))
	return srv, rec, ev, newKiosk(t, srv, srvSecret)
}

func checkSuccess(t *testing.T, m mobypay.Message, status string, sen int64) {
	t.Helper()
	if !m.IsSuccess() || m.Status != status {
		t.Fatalf("not a %s result: %s", status, m.Payload)
	}
	if got, ok := m.AmountSen(); !ok || got != sen {
		t.Errorf("amount %v, want %d sen", m.Amount, sen)
	}
	if len(m.TransactionID) != 6 || strings.Trim(m.TransactionID, "0123456789") != "" {
		t.Errorf("transaction_id %q, want 6 digits", m.TransactionID)
	}
	if m.PosID != "POS001" || m.Nonce == "" || m.Timestamp == "" {
		t.Errorf("header fields missing: %s", m.Payload)
	}
}

func TestServerSimBehaviours(t *testing.T) {
	const txn = "TXN1757492341554"
	cases := []struct {
		behaviour Behaviour
		mode      string
		check     func(t *testing.T, rec *recHandler, k *kiosk)
	}{
		{Approve, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			m := awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn)
			checkSuccess(t, m, mobypay.StatusSuccess, 1000)
			if m.CardLast4 == "" || m.AuthorizationCode == "" {
				t.Errorf("card result without card fields: %s", m.Payload)
			}
		}},
		{Approve, mobypay.ModeDuitNowQR, func(t *testing.T, rec *recHandler, k *kiosk) {
			m := awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn)
			checkSuccess(t, m, mobypay.StatusSuccess, 1000)
			if m.CardLast4 != "" {
				t.Errorf("QR result with card fields: %s", m.Payload)
			}
		}},
		{Decline, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			m := awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusFailed, txn)
			if m.ErrorMessage != "USER_ABORT" || m.IsSuccess() {
				t.Errorf("decline: %s", m.Payload)
			}
		}},
		{Approved, mobypay.ModeBNPL, func(t *testing.T, rec *recHandler, k *kiosk) {
			checkSuccess(t, awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusApproved, txn), mobypay.StatusApproved, 1000)
		}},
		{Slow, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			checkSuccess(t, awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn), mobypay.StatusSuccess, 1000)
		}},
		{Split, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			checkSuccess(t, awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn), mobypay.StatusSuccess, 1000)
		}},
		{Merged, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			checkSuccess(t, awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn), mobypay.StatusSuccess, 1000)
		}},
		{WrongAmount, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			checkSuccess(t, awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn), mobypay.StatusSuccess, 1100)
		}},
		{WrongTxn, mobypay.ModeCard, func(t *testing.T, rec *recHandler, k *kiosk) {
			m := mobypaytest.Await(t, rec.Msgs, "result")
			if m.Type != mobypay.TypeTransactionResult || m.TxnID == txn || m.TxnID == "" {
				t.Errorf("wrongtxn: %s", m.Payload)
			}
		}},
		{IPP, mobypay.ModeCard, checkIPP(txn)},
		{Approve, mobypay.ModeIPP, checkIPP(txn)},
	}
	for _, c := range cases {
		t.Run(string(c.behaviour)+"/"+c.mode, func(t *testing.T) {
			t.Parallel()
			srv, rec, ev, k := connected(t, c.behaviour, mobypay.ServerConfig{})
			k.request(txn, 1000, c.mode)
			// The simulator verified the kiosk's signature before answering.
			got := awaitSim(t, ev, "request received", simKind(Received)).Msg
			if got.Type != mobypay.TypeTransactionRequest || got.TxnID != txn || got.Amount != 10 || got.PaymentMode != c.mode {
				t.Fatalf("simulator received %+v", got)
			}
			awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, txn)
			c.check(t, rec, k)
			st := srv.Stats()
			if n := st.BadSig.Load() + st.Malformed.Load() + st.Replayed.Load() + st.Late.Load() + st.Undecoded.Load(); n != 0 {
				t.Errorf("%d refused or late messages", n)
			}
		})
	}
}

func checkIPP(txn string) func(t *testing.T, rec *recHandler, k *kiosk) {
	return func(t *testing.T, rec *recHandler, k *kiosk) {
		plans := awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusIPPPlans, txn)
		if len(plans.Plans) != 2 || plans.Plans[0].ID != "pay-in-full" || plans.Plans[1].TotalInstallments != 6 {
			t.Fatalf("plans: %s", plans.Payload)
		}
		if !strings.Contains(plans.Plans[0].Raw, `"installmentDetails":[]`) {
			t.Errorf("pay-in-full plan: %s", plans.Plans[0].Raw)
		}
		k.selectPlan(txn, plans.Plans[1].ID)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusPlanReceived, txn)
		m := awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, txn)
		checkSuccess(t, m, mobypay.StatusSuccess, 1000)
		if m.PlanID != plans.Plans[1].ID {
			t.Errorf("plan_id %q, want %q", m.PlanID, plans.Plans[1].ID)
		}
	}
}

func TestServerErrorBehaviour(t *testing.T) {
	_, rec, _, k := connected(t, Error, mobypay.ServerConfig{})
	k.request("TXN1", 500, mobypay.ModeCard)
	m := awaitMsg(t, rec, mobypay.TypeError, "", "TXN1")
	if m.Text == "" {
		t.Errorf("error without message: %s", m.Payload)
	}
}

func TestServerBadSignatureNotDelivered(t *testing.T) {
	srv, rec, _, k := connected(t, BadSig, mobypay.ServerConfig{})
	k.request("TXN1", 1000, mobypay.ModeCard)
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
	// The cancel's ack comes after the forged result on the same stream:
	// once it is here, the result has been judged.
	k.cancel("TXN1")
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1")
	if n := srv.Stats().BadSig.Load(); n != 1 {
		t.Errorf("BadSig = %d, want 1", n)
	}
	mobypaytest.ExpectNothing(t, rec.Lates, "late message")
}

func TestServerReplayDeliveredOnce(t *testing.T) {
	srv, rec, _, k := connected(t, Replay, mobypay.ServerConfig{})
	k.request("TXN1", 1000, mobypay.ModeCard)
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
	awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, "TXN1")
	k.cancel("TXN1")
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1") // not the duplicate
	if n := srv.Stats().Replayed.Load(); n != 1 {
		t.Errorf("Replayed = %d, want 1", n)
	}
}

func TestServerStaleGoesToLate(t *testing.T) {
	srv, rec, _, k := connected(t, Stale, mobypay.ServerConfig{})
	k.request("TXN1", 1000, mobypay.ModeCard)
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
	l := mobypaytest.Await(t, rec.Lates, "late result")
	if !errors.Is(l.Err, mobypay.ErrStale) || !l.Msg.IsSuccess() || l.Msg.TxnID != "TXN1" {
		t.Errorf("late: %v %s", l.Err, l.Msg.Payload)
	}
	k.cancel("TXN1")
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1")
	if st := srv.Stats(); st.Late.Load() != 1 || st.Received.Load() != 2 {
		t.Errorf("Late = %d, Received = %d; want 1, 2", st.Late.Load(), st.Received.Load())
	}
}

func TestServerCancel(t *testing.T) {
	t.Run("in flight", func(t *testing.T) {
		t.Parallel()
		srv, rec := startServer(t, mobypay.ServerConfig{})
		startSim(t, Config{Addr: srv.Addr().String(), Behaviour: Slow, Delay: time.Hour})
		awaitState(t, rec, mobypay.Connected)
		k := newKiosk(t, srv, srvSecret)
		k.request("TXN1", 1000, mobypay.ModeCard)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
		k.cancel("TXN1")
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1")
		if m := awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusFailed, "TXN1"); m.ErrorMessage != "USER_ABORT" {
			t.Errorf("after cancel: %s", m.Payload)
		}
	})
	t.Run("cancel-late", func(t *testing.T) {
		t.Parallel()
		_, rec, _, k := connected(t, CancelLate, mobypay.ServerConfig{})
		k.request("TXN1", 1000, mobypay.ModeCard)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
		k.cancel("TXN1")
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1")
		checkSuccess(t, awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, "TXN1"), mobypay.StatusSuccess, 1000)
	})
	t.Run("ackonly", func(t *testing.T) {
		t.Parallel()
		_, rec, _, k := connected(t, AckOnly, mobypay.ServerConfig{})
		k.request("TXN1", 1000, mobypay.ModeCard)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
		k.cancel("TXN1")
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1")
		k.request("TXN2", 1000, mobypay.ModeCard)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN2") // no result came between
	})
	t.Run("finished", func(t *testing.T) {
		t.Parallel()
		_, rec, _, k := connected(t, Approve, mobypay.ServerConfig{})
		k.request("TXN1", 1000, mobypay.ModeCard)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
		awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, "TXN1")
		k.cancel("TXN1")
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusReceived, "TXN1")
		k.request("TXN2", 1000, mobypay.ModeCard)
		awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN2")
	})
}

func TestServerSilentSim(t *testing.T) {
	_, rec, ev, k := connected(t, Silent, mobypay.ServerConfig{})
	k.request("TXN1", 1000, mobypay.ModeCard)
	awaitSim(t, ev, "request received", simKind(Received))
	k.cancel("TXN1")
	awaitSim(t, ev, "cancel received", simKind(Received))
	// Nothing was sent: the simulator would have reported it before
	// handling the cancel.
	mobypaytest.ExpectNothing(t, ev, "simulator event")
	mobypaytest.ExpectNothing(t, rec.Msgs, "message")
}

// TestSimRefusesBadKioskFrames: the simulator judges the kiosk as the
// kiosk judges it.
func TestSimRefusesBadKioskFrames(t *testing.T) {
	srv, rec, ev, k := connected(t, Approve, mobypay.ServerConfig{})
	forged := newKiosk(t, srv, []byte("not-the-secret"))
	forged.request("TXN1", 1000, mobypay.ModeCard)
	if e := awaitSim(t, ev, "refusal", simKind(Refused)); !errors.Is(e.Err, mobypay.ErrSignature) {
		t.Errorf("forged request refused with %v", e.Err)
	}
	f, err := k.codec.AppendTransactionRequest(nil, k.header("TXN2"), 1000, mobypay.ModeCard)
	if err != nil {
		t.Fatal(err)
	}
	k.send(f)
	k.send(f)
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN2")
	if e := awaitSim(t, ev, "refusal", simKind(Refused)); !errors.Is(e.Err, mobypay.ErrReplay) {
		t.Errorf("replayed request refused with %v", e.Err)
	}
	h := k.header("TXN3")
	h.Timestamp -= 2 * time.Minute.Milliseconds()
	f, _ = k.codec.AppendTransactionRequest(nil, h, 1000, mobypay.ModeCard)
	k.send(f)
	if e := awaitSim(t, ev, "refusal", simKind(Refused)); !errors.Is(e.Err, mobypay.ErrStale) {
		t.Errorf("stale request refused with %v", e.Err)
	}
	awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, "TXN2")
	k.send([]byte("{\"payload\": {\"type\": \"ping\"}}\n"))
	if e := awaitSim(t, ev, "refusal", simKind(Refused)); !errors.Is(e.Err, mobypay.ErrSignature) {
		t.Errorf("unsigned ping refused with %v", e.Err)
	}
}

// TestSimDropReportsAfterReconnect: the app drops mid-payment, reconnects
// and reports the transaction that was in flight with an error message.
func TestSimDropReportsAfterReconnect(t *testing.T) {
	srv, rec, ev, k := connected(t, Drop, mobypay.ServerConfig{})
	k.request("TXN1", 1000, mobypay.ModeCard)
	// The server sees the old session end (mobypay.Disconnected, mobypay.Connected) or the
	// reconnect replace it first (mobypay.Connected). The ack comes on the old
	// session and the error on the new one, so they may arrive in either
	// order, but neither may be lost.
	if e := mobypaytest.Await(t, rec.States, "ConnState"); e.State == mobypay.Disconnected {
		awaitState(t, rec, mobypay.Connected)
	} else if e.State != mobypay.Connected {
		t.Fatalf("ConnState %v", e.State)
	}
	got := map[string]mobypay.Message{}
	for range 2 {
		m := mobypaytest.Await(t, rec.Msgs, "message")
		got[m.Type+" "+m.Status+" "+m.TxnID] = m
	}
	if _, ok := got["ack processing TXN1"]; !ok {
		t.Errorf("no ack: %v", got)
	}
	if m, ok := got["error  TXN1"]; !ok || m.Text == "" || m.PosID != "POS001" {
		t.Errorf("no error after reconnect: %v", got)
	}
	awaitSim(t, ev, "disconnected", simKind(Disconnected))
	awaitSim(t, ev, "reconnected", simKind(Connected))
	if n := srv.Stats().Sessions.Load(); n != 2 {
		t.Errorf("Sessions = %d, want 2", n)
	}
}

// TestSimReconnectsWhenDropped: the server drops the simulator's session
// (here, replaced by another connection from the same host); the
// simulator reconnects and takes the session back.
func TestSimReconnectsWhenDropped(t *testing.T) {
	srv, rec, ev, k := connected(t, Approve, mobypay.ServerConfig{})
	intruder := mobypaytest.Dial(t, srv.Addr(), "")
	if e := awaitState(t, rec, mobypay.Connected); e.Peer != intruder.LocalAddr().String() {
		t.Fatalf("connected %s, want %s", e.Peer, intruder.LocalAddr())
	}
	awaitSim(t, ev, "disconnected", simKind(Disconnected))
	awaitSim(t, ev, "reconnected", simKind(Connected))
	if e := awaitState(t, rec, mobypay.Connected); e.Peer == intruder.LocalAddr().String() {
		t.Fatalf("connected %s again", e.Peer)
	}
	mobypaytest.ExpectClosed(t, intruder)
	if n := srv.Stats().Replaced.Load(); n != 2 {
		t.Errorf("Replaced = %d, want 2", n)
	}
	k.request("TXN1", 1000, mobypay.ModeCard)
	awaitMsg(t, rec, mobypay.TypeAck, mobypay.StatusProcessing, "TXN1")
	awaitMsg(t, rec, mobypay.TypeTransactionResult, mobypay.StatusSuccess, "TXN1")
}
