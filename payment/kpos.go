package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/protocol/kpos"
)

// KPOSConfig is what the Finexus host needs to know about this machine.
type KPOSConfig struct {
	MID              string
	DeviceSN         string
	CallerDeviceType string // "17" on-premises car park, "18" cloud
	CallerDeviceVer  string
	SequencePrefix   string // prepended to the daily running number
	Currency         string // ISO 4217 numeric, "458" for MYR [U]
	Timeout          time.Duration
}

// KPOS is the Finexus KayaakuPOS provider: it submits payments to the
// host, and learns outcomes from 0025 notifications (Notified), from
// inquiries, and aborts on cancel. mrn is our txn_id.
type KPOS struct {
	cfg    KPOSConfig
	client *kpos.Client
	j      *Journal
	svc    *Service
	log    *slog.Logger
}

// NewKPOS returns the provider; Bind connects it to the service.
func NewKPOS(cfg KPOSConfig, client *kpos.Client, j *Journal, log *slog.Logger) *KPOS {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Currency == "" {
		cfg.Currency = "458"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KPOS{cfg: cfg, client: client, j: j, log: log.With("component", "kpos")}
}

// Bind sets the service reports go to.
func (p *KPOS) Bind(svc *Service) { p.svc = svc }

// Name implements Provider.
func (p *KPOS) Name() string { return "kpos" }

// Ready implements Provider. The host is only known to be reachable by
// calling it, which Request does.
func (p *KPOS) Ready() error { return nil }

func (p *KPOS) common(now time.Time) (kpos.Common, error) {
	n, err := p.j.NextSequence("kpos", now.Format("2006-01-02"))
	if err != nil {
		return kpos.Common{}, err
	}
	seq := p.cfg.SequencePrefix + strconv.FormatUint(n, 10)
	if len(seq) > 16 {
		return kpos.Common{}, fmt.Errorf("kpos: sequenceNo %q longer than 16", seq)
	}
	return kpos.Common{MsgVer: "1.0", BillerType: "AM", CallerDeviceType: p.cfg.CallerDeviceType,
		CallerDeviceVer: p.cfg.CallerDeviceVer, SequenceNo: seq}, nil
}

func (p *KPOS) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), p.cfg.Timeout)
}

// Request implements Provider: 0011 submit. A refusal by the host means
// no payment can happen; an unanswered call may have reached it, so the
// service waits and inquires.
func (p *KPOS) Request(t *Txn) error {
	c, err := p.common(time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	ctx, cancel := p.ctx()
	defer cancel()
	reply, err := p.client.Submit(ctx, &kpos.SubmitRequest{
		Common: c, SellerID: "000000", MID: p.cfg.MID, IsPaymentReq: "Y", IsInvoiceReq: "N",
		Payment: &kpos.Payment{MRN: t.ID, RequiredPayment: "Y", PaymentMethod: "00",
			Amount: kpos.AmountField(int64(t.Amount)), Currency: p.cfg.Currency},
	})
	if err != nil {
		return err
	}
	if reply.ResultCode != kpos.ResultSuccess {
		return fmt.Errorf("%w: host refused the payment: %s %s", ErrNotDelivered, reply.ResultCode, reply.AdvMsg)
	}
	// The host took it: that is this provider's ack. Reported from a
	// goroutine because Request runs on the service loop.
	ack := Report{Provider: "kpos", TxnID: t.ID, Kind: ReportAck, Status: "processing",
		Evidence: Evidence{Source: "kpos", Type: reply.MTI, Status: reply.ResultCode, Payload: reply.Plaintext}}
	go p.svc.Report(ack)
	return nil
}

// SelectPlan implements Provider; KPOS has no IPP plans.
func (p *KPOS) SelectPlan(*Txn, string) error {
	return errors.New("kpos: no instalment plans")
}

// Cancel implements Provider: 0031 abort.
func (p *KPOS) Cancel(t *Txn) error {
	if p.cfg.DeviceSN == "" {
		return errors.New("kpos: abort needs kpos.device_sn")
	}
	c, err := p.common(time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	reply, err := p.client.Abort(ctx, &kpos.AbortRequest{Common: c, SellerID: "000000", MID: p.cfg.MID, MRN: t.ID, DeviceSN: p.cfg.DeviceSN})
	if err != nil {
		return err
	}
	if reply.ResultCode != kpos.ResultSuccess {
		return fmt.Errorf("kpos: abort refused: %s", reply.ResultCode)
	}
	return nil
}

// Inquire implements Inquirer: 001X.
func (p *KPOS) Inquire(t *Txn) (Report, error) {
	c, err := p.common(time.Now())
	if err != nil {
		return Report{}, err
	}
	ctx, cancel := p.ctx()
	defer cancel()
	reply, err := p.client.Inquire(ctx, &kpos.InquiryRequest{Common: c, MID: p.cfg.MID, MRN: t.ID})
	if err != nil {
		return Report{}, err
	}
	ev := Evidence{Source: "kpos", Type: reply.MTI, Status: reply.ResultCode, Payload: reply.Plaintext}
	return outcomeReport(t.ID, reply.ResultCode, reply.AuthIDResp, reply.HTR, reply.MaskedPAN, reply.AdvMsg, ev), nil
}

// Notified turns a verified 0025 into a report and records it; it answers
// the code to send back. Unknown mrns are journaled and refused.
func (p *KPOS) Notified(ctx context.Context, n kpos.Notification, plaintext []byte, codes kpos.Codes) (string, error) {
	ev := Evidence{Source: "kpos", Type: kpos.MTINotification, Status: n.ResultCode, Payload: string(plaintext)}
	r := outcomeReport(n.MRN, n.ResultCode, n.AuthIDResp, n.HTR, n.MaskedPAN, n.AdvMsg, ev)
	rec, err := p.svc.Record(ctx, r)
	if err != nil {
		return "", err
	}
	if !rec.Known {
		return codes.UnknownMRN, nil
	}
	return kpos.ResultSuccess, nil
}

// SerialNotified records a 0025 that came over the serial cable. Unlike
// the HTTP one it states the amount, which must match the request.
func (p *KPOS) SerialNotified(ctx context.Context, n kpos.SerialNotification, data []byte, unknownMRN string) (string, error) {
	ev := Evidence{Source: "kpos-serial", Type: kpos.MTINotification, Status: n.ResultCode, Payload: string(data)}
	r := outcomeReport(n.MRN, n.ResultCode, n.ApprovalCode, "", "", "", ev)
	amount := Sen(n.AmountSen)
	r.Amount = &amount
	rec, err := p.svc.Record(ctx, r)
	if err != nil {
		return "", err
	}
	if !rec.Known {
		return unknownMRN, nil
	}
	return kpos.ResultSuccess, nil
}

func outcomeReport(mrn, code, auth, htr, pan, msg string, ev Evidence) Report {
	r := Report{Provider: "kpos", TxnID: mrn, Status: code, AuthCode: auth, POSTxnID: htr, Message: msg, Evidence: ev, Repeatable: true}
	if len(pan) >= 4 {
		r.CardLast4 = pan[len(pan)-4:]
	}
	switch kpos.Classify(code) {
	case kpos.Approved:
		r.Kind = ReportApproved
	case kpos.Pending:
		r.Kind = ReportOther
	default:
		r.Kind = ReportDeclined
		if r.Message == "" {
			r.Message = code
		} else {
			r.Message = code + ": " + r.Message
		}
	}
	return r
}
