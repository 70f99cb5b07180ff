package payment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/kioskd/kioskd/protocol/kpos"
)

// The KPOS half of the simulation: payments with provider "kpos" go to a
// simulated Finexus host (simKPOS stands in for the KPOS provider's HTTP
// client: submit, abort, inquiry), and the host's 0025 notifications come
// in through the real KPOS.Notified and SerialNotified, whose reports are
// Repeatable: a notification the host sends again unchanged is dropped as
// a duplicate, which the evidence check expects. Inquiry answers are
// built by the provider's own outcomeReport.

// KPOS messages (simStep.Msg with a pos op): the host notifies approved,
// declined, still pending, or (serial cable) approved with an amount that
// matches or not; "lost" settles the payment at the host without the
// notification arriving, so that only an inquiry can learn it.
var simKPOSMsgs = []string{
	"kpos_ok", "kpos_declined", "kpos_pending", "kpos_serial_ok", "kpos_serial_mismatch",
	"kpos_lost_ok", "kpos_lost_declined",
}

func simIsKPOS(msg string) bool { return len(msg) > 5 && msg[:5] == "kpos_" }

// simKPOS is the provider the service drives for "kpos" payments.
type simKPOS struct{ w *simWorld }

func (simKPOS) Name() string { return "kpos" }

func (simKPOS) Ready() error { return nil }

func (simKPOS) SelectPlan(*Txn, string) error { return errors.New("kpos: no instalment plans") }

// Cancel is the 0031 abort: the host aborts what is still pending and
// refuses to abort what it has settled.
func (p simKPOS) Cancel(t *Txn) error {
	w := p.w
	if w.dead {
		return errors.New("power cut")
	}
	switch w.host[t.ID] {
	case "pending":
		w.host[t.ID] = "declined"
		w.note += "; aborted"
		return nil
	case "approved", "declined":
		w.note += "; abort refused"
		return errors.New("kpos: abort refused: KP052")
	}
	w.note += "; abort refused"
	return errors.New("kpos: abort refused: KP049")
}

// Request is the 0011 submit: the host's answer is the ack, reported from
// a goroutine as KPOS.Request does. The send faults apply to it: not
// delivered is the host refusing, an error after delivery is a submit
// that timed out after the host took it.
func (p simKPOS) Request(t *Txn) error {
	w := p.w
	if w.dead {
		return fmt.Errorf("%w: power cut", ErrNotDelivered)
	}
	fault := w.sendFault
	w.sendFault = ""
	switch fault {
	case "crash_before_send":
		w.powerCut()
		return fmt.Errorf("%w: power cut", ErrNotDelivered)
	case "send_lost":
		return fmt.Errorf("%w: host refused the payment: KP001", ErrNotDelivered)
	}
	rec, err := w.j.Get(t.ID)
	if err != nil || rec.State != Created || rec.Amount != t.Amount {
		w.fail("journal before effect", "0011 submit for %s sent while the journal says %+v, %v", t.ID, rec, err)
	}
	w.requests[t.ID]++
	if w.requests[t.ID] > 1 {
		w.fail("one request per payment", "0011 for %s sent %d times", t.ID, w.requests[t.ID])
	}
	tx := w.addTxn(rec)
	w.host[t.ID] = "pending"
	switch fault {
	case "crash_after_send":
		w.powerCut()
		return errors.New("kpos: submit: power cut")
	case "send_error":
		return errors.New("kpos: submit: context deadline exceeded")
	}
	payload := fmt.Sprintf(`{"mrn":%q,"resultCode":"00000","sequenceNo":"%d"}`, t.ID, w.seq())
	ack := Report{TxnID: t.ID, Kind: ReportAck, Status: "processing",
		Evidence: Evidence{Source: "kpos", Type: kpos.MTISubmitReply, Status: kpos.ResultSuccess, Payload: payload}}
	tx.evidence = append(tx.evidence, payload)
	svc := w.svc
	go svc.Report(ack)
	return nil
}

// Inquire is the 001X inquiry: the host says what it knows.
func (p simKPOS) Inquire(t *Txn) (Report, error) {
	w := p.w
	if w.dead {
		return Report{}, errors.New("power cut")
	}
	if w.inqFault != "" && (w.host[t.ID] != "approved" || w.opt.on("inquiry_gives_up")) {
		w.inqFault = ""
		w.note += "; inquiry failed"
		return Report{}, errors.New("kpos: inquiry: context deadline exceeded")
	}
	code := map[string]string{"": "KP049", "pending": "KA024", "approved": kpos.ResultSuccess, "declined": "KP051"}[w.host[t.ID]]
	payload := fmt.Sprintf(`{"mrn":%q,"resultCode":%q,"sequenceNo":"%d"}`, t.ID, code, w.seq())
	ev := Evidence{Source: "kpos", Type: kpos.MTIInquiry, Status: code, Payload: payload}
	r := outcomeReport(t.ID, code, "A1", "HTR1", "411111******1111", "", ev)
	w.note += "; inquiry " + code
	if tx := w.byID[t.ID]; tx != nil && (r.Kind == ReportApproved || r.Kind == ReportDeclined) {
		// Final answers are applied, and so journaled.
		tx.evidence = append(tx.evidence, payload)
		tx.resulted = true
		if r.Kind == ReportApproved {
			tx.success = true
			tx.clean[payload] = "kpos"
		}
	}
	return r, nil
}

func (w *simWorld) seq() int {
	w.kseq++
	return w.kseq
}

// kposBuild makes the notification st says about payment id.
func (w *simWorld) kposBuild(st simStep, id string, tx *simTxn) *simFrame {
	amount := Sen(1000)
	if tx != nil {
		amount = tx.amount
	}
	f := &simFrame{step: st, txn: id, kpos: true}
	code := kpos.ResultSuccess
	switch st.Msg {
	case "kpos_declined", "kpos_lost_declined":
		code = "KP051"
	case "kpos_pending":
		code = "KA024"
	}
	n := kpos.Notification{MsgVer: "1.0", BillerType: "AM", SequenceNo: strconv.Itoa(w.seq()), MRN: id, ResultCode: code}
	if code == kpos.ResultSuccess {
		n.AuthIDResp, n.HTR, n.MaskedPAN = "A"+n.SequenceNo, "HTR"+n.SequenceNo, "411111******1111"
	}
	f.notification = n
	f.payload = fmt.Sprintf(`{"authIdResp":%q,"htr":%q,"maskedPAN":%q,"mrn":%q,"resultCode":%q,"sequenceNo":%q}`,
		n.AuthIDResp, n.HTR, n.MaskedPAN, n.MRN, n.ResultCode, n.SequenceNo)
	f.success = code == kpos.ResultSuccess
	switch st.Msg {
	case "kpos_serial_ok", "kpos_serial_mismatch":
		f.serial = kpos.SerialNotification{ResultCode: code, AmountSen: int64(amount), MID: "MID1", MRN: id,
			PaymentType: "01", PaymentMethod: "00", ApprovalCode: "A" + n.SequenceNo}
		if st.Msg == "kpos_serial_mismatch" {
			f.serial.AmountSen += 100
		}
		f.payload = fmt.Sprintf("0025|%s|%s|%d|%s", id, code, f.serial.AmountSen, n.SequenceNo)
		f.clean = st.Msg == "kpos_serial_ok"
	default:
		f.clean = f.success
	}
	return f
}

// kposDeliver hands a notification to the KPOS provider as its HTTP or
// serial receiver does (or, for the "lost" ones, only tells the host).
func (w *simWorld) kposDeliver(f *simFrame) {
	w.frames = append(w.frames, f)
	outcome := "declined"
	if f.success {
		outcome = "approved"
	}
	if f.notification.ResultCode == "KA024" {
		outcome = "pending"
	}
	if h, ok := w.host[f.txn]; ok && h == "pending" {
		// The host's own outcome is settled once; what it sends after
		// that is only what it sends.
		w.host[f.txn] = outcome
	}
	if f.step.Msg == "kpos_lost_ok" || f.step.Msg == "kpos_lost_declined" {
		w.note = "host: " + f.txn + " " + outcome + ", notification lost"
		w.fates["kpos lost"]++
		// The customer paid while the kiosk still waits and inquires at
		// its timeouts: once it gives up, the payment must be vended or
		// flagged all the same.
		if tx := w.byID[f.txn]; tx != nil && outcome == "approved" && w.host[f.txn] == "approved" {
			if rec, err := w.j.Get(f.txn); err == nil && simInProgress(rec) {
				tx.hostPaid = true
			}
		}
		return
	}
	tx := w.byID[f.txn]
	if tx != nil && !w.cross(tx, "kpos") {
		return
	}
	if tx != nil && outcome == "declined" {
		// The host itself told the kiosk otherwise.
		tx.hostPaid = false
	}
	if tx != nil && !slices.Contains(tx.evidence, f.payload) {
		// A repeat of what is journaled is dropped (Repeatable).
		tx.evidence = append(tx.evidence, f.payload)
		tx.success = tx.success || f.success
		tx.resulted = tx.resulted || f.notification.ResultCode != "KA024"
		if f.clean {
			tx.clean[f.payload] = "kpos"
		}
	}
	kp := NewKPOS(KPOSConfig{}, nil, w.j, nil)
	kp.Bind(w.svc)
	var code string
	var err error
	if f.serial.MRN != "" {
		code, err = kp.SerialNotified(context.Background(), f.serial, []byte(f.payload), kpos.DefaultCodes.UnknownMRN)
	} else {
		code, err = kp.Notified(context.Background(), f.notification, []byte(f.payload), kpos.DefaultCodes)
	}
	w.note = fmt.Sprintf("KPOS %s %s: %s %v", f.step.Msg, f.txn, code, err)
	w.fates["kpos notified"]++
	if w.dead {
		return
	}
	want := kpos.ResultSuccess
	if tx == nil {
		want = kpos.DefaultCodes.UnknownMRN
	}
	if err != nil || code != want {
		w.fail("kpos answer", "notification %s for %s answered %q, %v; want %q", f.step.Msg, f.txn, code, err, want)
	}
}
