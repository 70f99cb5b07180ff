package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/config"
	"github.com/kioskd/kioskd/device/serial"
	"github.com/kioskd/kioskd/payment"
	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// kposWorld is a kiosk with KPOS enabled and a fake Finexus host, each
// holding only its own private keys and the other's public keys.
type kposWorld struct {
	k    *kiosk
	host *kpostest.Host
}

func writeKey(t *testing.T, dir, name string, priv *ecdsa.PrivateKey) (privPath, pubPath string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	privPath, pubPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
	os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
	return privPath, pubPath
}

func genKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func startKPOSWorld(t *testing.T, behaviour string) *kposWorld {
	return startKPOSWorldWith(t, behaviour, "")
}

func startKPOSWorldWith(t *testing.T, behaviour, extra string) *kposWorld {
	t.Helper()
	dir := t.TempDir()
	kioskECDH, finexusECDH := genKey(t, elliptic.P256()), genKey(t, elliptic.P256())
	kioskSign, finexusSign := genKey(t, elliptic.P521()), genKey(t, elliptic.P521())
	kEC, _ := writeKey(t, dir, "kiosk-ecdh", kioskECDH)
	_, fECpub := writeKey(t, dir, "finexus-ecdh", finexusECDH)
	kSign, _ := writeKey(t, dir, "kiosk-sign", kioskSign)
	_, fSignPub := writeKey(t, dir, "finexus-sign", finexusSign)

	cek, err := kpos.DeriveKey(finexusECDH, &kioskECDH.PublicKey, kpos.OtherInfoRaw)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys := &kpos.Keys{CEK: cek, Ours: finexusSign, Theirs: &kioskSign.PublicKey, Header: kpos.Header{EPK: &finexusECDH.PublicKey, EPKKid: "fnx", Kid: "123"}}
	host := kpostest.NewHost(hostKeys, "", behaviour)
	host.BadKeys = &kpos.Keys{CEK: cek, Ours: genKey(t, elliptic.P521()), Theirs: &kioskSign.PublicKey}
	hs := httptest.NewServer(host)
	t.Cleanup(hs.Close)

	cfgPath := writeTestConfig(t, dir, `[payment]
cancel_grace = "1s"
reconnect_grace = "1s"
[payment.timeouts.card]
ack = "2s"
result = "2s"
[relay]
pulse = "10ms"
[kpos]
enabled = true
host_url = "`+hs.URL+`/fnx-fintech/sandbox/mqpos-host"
mid = "000000000012345"
device_sn = "PP0000000000001"
listen = "127.0.0.1:0"
allow_plain_http = true
ecdh_private_key = "`+kEC+`"
finexus_ecdh_public_key = "`+fECpub+`"
signing_key = "`+kSign+`"
finexus_signing_public_key = "`+fSignPub+`"
finexus_source_system = "FNX"
jwe_kid = "123"
`+extra)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan started, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, up) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var s started
	select {
	case s = <-up:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	host.NotifyURL = "http://" + s.KPOSAddr + "/kpos/notification"
	return &kposWorld{k: &kiosk{dir: dir, cfgPath: cfgPath, pos: s.POSAddr}, host: host}
}

func (w *kposWorld) answer(t *testing.T) kpostest.Answer {
	t.Helper()
	select {
	case a := <-w.host.Answers:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no notification answered")
	}
	return kpostest.Answer{}
}

func TestKPOSPayments(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	cases := []struct {
		behaviour string
		exit      int
		state     payment.State
		pulses    int
		answers   []string // resultCodes the kiosk answers the notifications with
		status    int      // HTTP status of the first answer
	}{
		{"approve", exitOK, payment.Approved, 1, []string{"00000"}, 200},
		{"replay", exitOK, payment.Approved, 1, []string{"00000", "00000"}, 200},
		{"decline", exitDeclined, payment.Declined, 0, []string{"00000"}, 200},
		{"refuse", exitDeclined, payment.Declined, 0, nil, 0},
		{"silent", exitOK, payment.Approved, 1, nil, 0},                       // no notification: the inquiry finds it approved
		{"pending", exitOK, payment.Approved, 1, []string{"00000"}, 200},      // KA024 noted; the inquiry settles it
		{"tampered", exitOK, payment.Approved, 1, []string{"KP009"}, 401},     // refused; the inquiry finds the real outcome
		{"badsig", exitOK, payment.Approved, 1, []string{"KP009"}, 401},       // likewise
		{"unknown", exitUnclear, payment.TimedOut, 0, []string{"KP049"}, 200}, // about someone else's mrn
	}
	for _, tc := range cases {
		t.Run(tc.behaviour, func(t *testing.T) {
			t.Parallel()
			w := startKPOSWorld(t, tc.behaviour)
			code, out, errs := kioskd(t, "", "pay", "-provider", "kpos", "-amount", "12.50", "-json", "-config", w.k.cfgPath)
			var tx payment.Txn
			if err := json.Unmarshal([]byte(out), &tx); err != nil {
				t.Fatalf("pay: exit %d %q %s", code, out, errs)
			}
			if code != tc.exit || tx.State != tc.state {
				t.Fatalf("exit %d state %s (%+v); want exit %d state %s\n%s", code, tx.State, tx, tc.exit, tc.state, errs)
			}
			for i, want := range tc.answers {
				a := w.answer(t)
				if a.Err != nil || a.Code != want || (i == 0 && a.Status != tc.status) {
					t.Fatalf("answer %d: %+v, want code %s status %d", i, a, want, tc.status)
				}
			}
			if n := w.k.pulses(t); n != tc.pulses {
				t.Fatalf("%d relay pulses, want %d", n, tc.pulses)
			}
			if tc.behaviour == "replay" {
				cf := clientFlags{config: w.k.cfgPath}
				c, _ := cf.client()
				rec, err := c.PaymentEvidence(context.Background(), tx.ID)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, e := range rec.Messages {
					if e.Type == kpos.MTINotification {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("the replayed notification was journaled %d times: %+v", n, rec.Messages)
				}
			}
		})
	}
}

func postAs(t *testing.T, url, body, sig, source string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Signature", sig)
	req.Header.Set("sourceSystem", source)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestKPOSReceiverRefusals posts bad requests straight at the receiver.
func TestKPOSReceiverRefusals(t *testing.T) {
	w := startKPOSWorld(t, "approve")
	seal := func(mti, plain string) (string, string) {
		body, sig, err := w.host.Keys.Seal(mti, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		return string(body), sig
	}
	body, sig := seal(kpos.MTINotification, `{"mrn":"x"}`)
	_, otherSig := seal(kpos.MTINotification, `{"mrn":"y"}`)
	valid := `{"msgVer":"1.0","billerType":"AM","callerDeviceType":"17","callerDeviceVer":"1","sequenceNo":"1","mrn":"TXN1","resultCode":"00000"}`
	submitBody, submitSig := seal(kpos.MTISubmit, valid)
	goodBody, goodSig := seal(kpos.MTINotification, valid)
	cases := map[string]struct {
		body, sig, source string
		want              int
	}{
		"no signature":    {body, "", "FNX", 401},
		"garbage":         {"hello", sig, "FNX", 401},
		"oversize":        {"0025" + strings.Repeat("A", kpos.MaxBody+1), sig, "FNX", 413},
		"invalid fields":  {body, sig, "FNX", 400},
		"wrong signature": {body, otherSig, "FNX", 401},
		"wrong MTI":       {submitBody, submitSig, "FNX", 400},
		"wrong source":    {goodBody, goodSig, "XYZ", 403},
		"unknown mrn":     {goodBody, goodSig, "FNX", 200}, // answered with a refusal code, kept as evidence
	}
	for name, c := range cases {
		if got := postAs(t, w.host.NotifyURL, c.body, c.sig, c.source); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", name, got, c.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, w.host.NotifyURL, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET: %v %v", err, resp)
	}
	// The service is still taking payments.
	if code, out, _ := kioskd(t, "", "pay", "-provider", "kpos", "-amount", "1.00", "-config", w.k.cfgPath); code != exitOK {
		t.Fatalf("payment after refusals: exit %d %s", code, out)
	}
}

// TestKPOSSerialNotification: the outcome arrives as a framed 0025 on a
// real pseudo-terminal, as from a KPOS terminal on the serial cable.
func TestKPOSSerialNotification(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	master, slave, err := serial.OpenPTY()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	// silent: the host sends no HTTP notification, so only the serial one
	// can settle the payment before the ack timeout.
	w := startKPOSWorldWith(t, "silent", "serial_device = \""+slave+"\"\n")
	result, id := w.k.payAcked(t, "-provider", "kpos", "-amount", "12.50")
	fr := kpos.NewFrameReader(master, 0)
	send := func(frame []byte) string {
		t.Helper()
		master.SetDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < len(frame); i += 17 { // in pieces, as a UART delivers
			if _, err := master.Write(frame[i:min(i+17, len(frame))]); err != nil {
				t.Fatal(err)
			}
		}
		data, err := fr.Next()
		if err != nil {
			t.Fatalf("no 0026 answer: %v", err)
		}
		code, err := kpos.ParseSerialResponse(data)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	n := kpos.SerialNotification{ResultCode: "00000", AmountSen: 1250, ItemGivenID: "BAY-07", MID: "000000000012345",
		MRN: id, PaymentType: "STX", PaymentMethod: "01", ApprovalCode: "123456"}
	data, err := n.AppendData(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := kpos.AppendFrame(nil, data)
	bad := append([]byte(nil), good...)
	bad[len(bad)-3] ^= 0x01 // checksum digit
	if code := send(bad); code != "KA099" {
		t.Fatalf("damaged frame answered %s, want KA099", code)
	}
	if code := send(good); code != "00000" {
		t.Fatalf("notification answered %s", code)
	}
	tx := <-result
	if tx.State != payment.Approved || tx.Vend != payment.VendReleased || tx.AuthCode != "123456" {
		t.Fatalf("after the serial notification: %+v", tx)
	}
	// KPOS repeats a frame it thinks was lost: same answer, nothing new.
	if code := send(good); code != "00000" {
		t.Fatalf("repeat answered %s", code)
	}
	if w.k.pulses(t) != 1 {
		t.Fatalf("%d pulses", w.k.pulses(t))
	}
	n.MRN = "TXN1"
	data, _ = n.AppendData(nil)
	if code := send(kpos.AppendFrame(nil, data)); code != kpos.DefaultCodes.UnknownMRN {
		t.Fatalf("unknown mrn answered %s", code)
	}
}

// TestKPOSCancelAborts: cancelling a KPOS payment sends 0031; the host
// then reports the payment cancelled and the kiosk records it so.
func TestKPOSCancelAborts(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	w := startKPOSWorld(t, "wait")
	result, id := w.k.payAcked(t, "-provider", "kpos", "-amount", "5.00")
	if code, out, errs := kioskd(t, "", "cancel", "-config", w.k.cfgPath, id); code != 0 {
		t.Fatalf("cancel: %d %s %s", code, out, errs)
	}
	tx := <-result
	if tx.State != payment.Cancelled || !strings.Contains(tx.Error, "KA005") {
		t.Fatalf("after cancel: %+v", tx)
	}
	var mtis []string
	for len(w.host.Requests) > 0 {
		mtis = append(mtis, <-w.host.Requests)
	}
	if got := strings.Join(mtis, " "); !strings.Contains(got, kpos.MTISubmit+" "+kpos.MTIAbort) || !strings.Contains(got, kpos.MTIInquiry) {
		t.Fatalf("host saw %s; want a submit, an abort, then an inquiry", got)
	}
}

// TestKPOSOverTLS: with a certificate configured, notifications are
// received over TLS only.
func TestKPOSOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	dir := t.TempDir()
	certPath, keyPath, pool, err := kpostest.TLSPair(dir)
	if err != nil {
		t.Fatal(err)
	}

	w := startKPOSWorldWith(t, "approve", "tls_cert = \""+certPath+"\"\ntls_key = \""+keyPath+"\"\n")
	plainURL := w.host.NotifyURL
	w.host.NotifyURL = strings.Replace(plainURL, "http://", "https://", 1)
	w.host.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, out, errs := kioskd(t, "", "pay", "-provider", "kpos", "-amount", "2.00", "-config", w.k.cfgPath); code != exitOK {
		t.Fatalf("pay over TLS: %d %s %s", code, out, errs)
	}
	if a := w.answer(t); a.Err != nil || a.Code != "00000" {
		t.Fatalf("TLS answer %+v", a)
	}
	// Plain HTTP to the TLS port is not a notification.
	resp, err := http.Post(plainURL, "text/plain", strings.NewReader("0025x"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP accepted on the TLS listener")
		}
	}
}
