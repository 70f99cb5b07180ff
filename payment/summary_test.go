package payment

import (
	"strings"
	"testing"
	"time"
)

// The one-line forms name what is set and nothing that is not, so an
// operator reading `kioskd journal` sees a review or an error at once.
func TestTxnSummary(t *testing.T) {
	bare := Txn{ID: "TXN1", State: Declined, Mode: "card", Amount: 150}
	if got, want := bare.Summary(), "declined TXN1 card RM 1.50"; got != want {
		t.Errorf("bare: %q, want %q", got, want)
	}
	full := Txn{ID: "TXN2", State: Approved, Mode: "ipp", Amount: 1250, POSTransactionID: "P9", AuthCode: "A1",
		PlanID: "IPP6", Vend: VendUnknown, Error: "relay: stuck", Review: "vend unknown"}
	got := full.Summary()
	for _, want := range []string{"approved TXN2 ipp RM 12.50", " pos_txn=P9", " auth=A1", " plan=IPP6", " vend=vend_unknown", ` error="relay: stuck"`, " REVIEW: vend unknown"} {
		if !strings.Contains(got, want) {
			t.Errorf("full: %q lacks %q", got, want)
		}
	}
}

func TestEvidenceSummary(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local)
	ev := Evidence{Seq: 7, At: at, Source: "mobypay", Type: "payment_result", Status: "success", Disposal: "unknown txn", Payload: `{"a":1}`}
	got := ev.Summary()
	for _, want := range []string{"2026-12-01 09:30:00 #7 mobypay payment_result success", " txn=- ", `disposal="unknown txn"`, `payload={"a":1}`} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	ev.TxnID, ev.Status = "TXN3", ""
	if got := ev.Summary(); !strings.Contains(got, "payment_result txn=TXN3 ") {
		t.Errorf("with a txn id and no status: %q", got)
	}
}
