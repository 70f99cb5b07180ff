// Package kpostest fakes KPOS's peers for tests and demos: Host plays the
// Finexus host and the KPOS terminal behind it, with the same
// cryptography. It is test-only: nothing in the kioskd binary imports it
// (cmd/kioskd's dependency guard checks).
package kpostest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kioskd/kioskd/protocol/kpos"
)

// Host plays the Finexus host and the KPOS terminal behind it, with
// the same cryptography, for tests and demos. After a submit it notifies
// the kiosk according to Behaviour:
//
//	approve   00000 notification
//	decline   KA004 notification
//	pending   KA024 notification; inquiries answer 00000
//	silent    no notification; inquiries answer 00000
//	wait      no notification; inquiries answer KA024 until an abort
//	tampered  00000 notification with one body byte changed after signing
//	badsig    00000 notification signed with a key the kiosk does not know
//	replay    the 00000 notification twice
//	unknown   00000 notification for an mrn the kiosk never sent
//	refuse    the submit itself is refused (KP022 invalid amount)
//
// An abort marks the payment KA005 (cancel) unless already notified.
type Host struct {
	Keys      *kpos.Keys // host side: Ours signs as Finexus, Theirs is the kiosk's key
	BadKeys   *kpos.Keys // for badsig: a different signing key
	NotifyURL string
	Behaviour string
	HTTP      *http.Client

	mu       sync.Mutex
	outcome  map[string]string // mrn → resultCode inquiries answer
	Answers  chan Answer       // every answer the kiosk gave a notification
	Requests chan string       // MTI of every request received
}

// Answer is the kiosk's reply to one notification.
type Answer struct {
	MRN    string
	Status int
	Code   string // resultCode in the signed 0026, "" if unreadable
	Err    error
}

// NewHost returns a host; Answers and Requests are buffered.
func NewHost(keys *kpos.Keys, notifyURL, behaviour string) *Host {
	return &Host{Keys: keys, NotifyURL: notifyURL, Behaviour: behaviour, outcome: map[string]string{},
		Answers: make(chan Answer, 64), Requests: make(chan string, 64), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func (f *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, kpos.MaxBody))
	if err != nil {
		http.Error(w, "body", http.StatusBadRequest)
		return
	}
	mti, plain, err := f.Keys.Open(body, r.Header.Get("Signature"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	select {
	case f.Requests <- mti:
	default:
	}
	var req struct {
		SequenceNo string        `json:"sequenceNo"`
		MRN        string        `json:"mrn"`
		Payment    *kpos.Payment `json:"payment"`
	}
	json.Unmarshal(plain, &req)
	mrn := req.MRN
	if req.Payment != nil {
		mrn = req.Payment.MRN
	}
	reply := kpos.HostReply{SequenceNo: req.SequenceNo, ResultCode: kpos.ResultSuccess}
	f.mu.Lock()
	switch {
	case mti == kpos.MTISubmit && f.Behaviour == "refuse":
		reply.ResultCode = "KP022"
	case mti == kpos.MTISubmit:
		f.outcome[mrn] = "KA024"
		if f.Behaviour == "decline" {
			f.outcome[mrn] = "KA004"
		}
		go f.afterSubmit(mrn)
	case mti == kpos.MTIInquiry:
		code, ok := f.outcome[mrn]
		switch {
		case !ok:
			code = "KP063"
		case code == "KA024" && (f.Behaviour == "silent" || f.Behaviour == "pending"):
			code = kpos.ResultSuccess
		}
		reply.ResultCode = code
		if code == kpos.ResultSuccess {
			reply.AuthIDResp, reply.HTR = "484684", "HTR"+mrn
		}
	case mti == kpos.MTIAbort:
		if code := f.outcome[mrn]; code == "KA024" {
			f.outcome[mrn] = "KA005"
		}
	}
	f.mu.Unlock()
	f.answer(w, replyMTI(mti), reply)
}

func replyMTI(mti string) string {
	switch mti {
	case kpos.MTISubmit:
		return kpos.MTISubmitReply
	case kpos.MTIAbort:
		return kpos.MTIAbortReply
	}
	return mti
}

func (f *Host) answer(w http.ResponseWriter, mti string, v any) {
	plain, _ := json.Marshal(v)
	body, sig, err := f.Keys.Seal(mti, plain)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Signature", sig)
	w.Write(body)
}

func (f *Host) afterSubmit(mrn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := kpos.Notification{MsgVer: "1.0", BillerType: "AM", CallerDeviceType: "17", CallerDeviceVer: "1",
		SequenceNo: fmt.Sprint(time.Now().UnixMilli() % 1e12), MRN: mrn, ResultCode: kpos.ResultSuccess,
		AuthIDResp: "484684", PaymentScheme: "VS", MaskedPAN: "443322XXX1234", HTR: "HTR" + mrn, PaymentMethod: "01"}
	switch f.Behaviour {
	case "silent", "refuse", "wait":
		return
	case "decline":
		n.ResultCode, n.AuthIDResp, n.HTR = "KA004", "", ""
	case "pending":
		n.ResultCode = "KA024"
	case "unknown":
		n.MRN = "TXN0000000000001"
	}
	if n.ResultCode == kpos.ResultSuccess && n.MRN == mrn {
		f.mu.Lock()
		f.outcome[mrn] = kpos.ResultSuccess
		f.mu.Unlock()
	}
	times := 1
	if f.Behaviour == "replay" {
		times = 2
	}
	for range times {
		f.Answers <- f.Notify(ctx, n, f.Behaviour)
	}
}

// Notify posts one 0025 to the kiosk; how is "tampered", "badsig" or
// anything else for a correct message.
func (f *Host) Notify(ctx context.Context, n kpos.Notification, how string) Answer {
	plain, _ := json.Marshal(n)
	keys := f.Keys
	if how == "badsig" && f.BadKeys != nil {
		keys = f.BadKeys
	}
	body, sig, err := keys.Seal(kpos.MTINotification, plain)
	if err != nil {
		return Answer{MRN: n.MRN, Err: err}
	}
	if how == "tampered" {
		body = bytes.Clone(body)
		i := len(body) - 10
		body[i] ^= 0x01
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.NotifyURL, bytes.NewReader(body))
	if err != nil {
		return Answer{MRN: n.MRN, Err: err}
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Signature", sig)
	req.Header.Set("sourceSystem", "FNX")
	resp, err := f.HTTP.Do(req)
	if err != nil {
		return Answer{MRN: n.MRN, Err: err}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, kpos.MaxBody))
	a := Answer{MRN: n.MRN, Status: resp.StatusCode}
	a.Code, a.Err = replyCode(f.Keys, rb, resp.Header.Get("Signature"))
	if a.Err != nil && strings.TrimSpace(string(rb)) == "" {
		a.Err = fmt.Errorf("empty answer, HTTP %d", resp.StatusCode)
	}
	return a
}

// replyCode opens the kiosk's signed 0026 answer and returns its
// resultCode.
func replyCode(k *kpos.Keys, body []byte, signature string) (string, error) {
	mti, plain, err := k.Open(body, signature)
	if err != nil {
		return "", err
	}
	if mti != kpos.MTINotificationOK {
		return "", fmt.Errorf("%w: answer has MTI %s", kpos.ErrInvalid, mti)
	}
	var r kpos.Reply
	if err := json.Unmarshal(plain, &r); err != nil {
		return "", fmt.Errorf("%w: %w", kpos.ErrInvalid, err)
	}
	return r.ResultCode, nil
}
