package kpos

import (
	"errors"
	"strings"
	"testing"
)

const goodNotification = `{"msgVer":"1.0","billerType":"AM","callerDeviceType":"17","callerDeviceVer":"1","sequenceNo":"202409288868","mrn":"TXN1757492341554","resultCode":"00000","authIdResp":"484684","paymentScheme":"VS","maskedPAN":"443322XXX1234","htr":"","paymentMethod":"01","futureField":1}`

func TestParseNotification(t *testing.T) {
	n, err := ParseNotification([]byte(goodNotification))
	if err != nil {
		t.Fatal(err)
	}
	if n.MRN != "TXN1757492341554" || n.Outcome() != Approved || n.AuthIDResp != "484684" || n.PaymentMethod != "01" {
		t.Fatalf("%+v", n)
	}
	n, err = ParseNotification([]byte(strings.Replace(goodNotification, `"paymentMethod":"01"`, `"paymentMethod":4`, 1)))
	if err != nil || n.PaymentMethod != "04" {
		t.Fatalf("numeric paymentMethod: %v %q", err, n.PaymentMethod)
	}
}

func TestNotificationRefusals(t *testing.T) {
	// The documented sample has mrn and resultCode swapped (a UUID as the
	// result code): it must be refused, not misread.
	docSample := `{"msgVer":"1.0","billerType":"AM","callerDeviceType":"17","callerDeviceVer":"1","sequenceNo":"2022091511262185","mrn":"000000","resultCode":"8e8c6e61-f9e4-40f0-a4a5-9e561579c901","authIdResp":"484684","paymentScheme":"AM","maskedPAN":"443322XXX1234","htr":"","paymentMethod":"00"}`
	cases := map[string]string{
		"doc sample":       docSample,
		"no mrn":           strings.Replace(goodNotification, `"mrn":"TXN1757492341554",`, ``, 1),
		"blank result":     strings.Replace(goodNotification, `"resultCode":"00000"`, `"resultCode":"  "`, 1),
		"long mrn":         strings.Replace(goodNotification, `TXN1757492341554`, strings.Repeat("9", 41), 1),
		"long sequenceNo":  strings.Replace(goodNotification, `202409288868`, strings.Repeat("1", 17), 1),
		"mrn not a string": strings.Replace(goodNotification, `"TXN1757492341554"`, `17574`, 1),
		"bad method":       strings.Replace(goodNotification, `"paymentMethod":"01"`, `"paymentMethod":"1x"`, 1),
		"not json":         `0025eyJ`,
		"array":            `[]`,
		"trailing":         goodNotification + `{}`,
	}
	for name, body := range cases {
		if _, err := ParseNotification([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for code, want := range map[string]Outcome{"00000": Approved, "KA022": Pending, "KA024": Pending, "KP063": Pending, "KA004": Declined, "KA005": Declined, "AR001": Declined, "": Declined, "0000": Declined} {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%q) = %s, want %s", code, got, want)
		}
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(goodNotification))
	f.Add([]byte(`{"paymentMethod":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseNotification(b)
		if err == nil && (n.MRN == "" || len(n.ResultCode) != 5) {
			t.Fatalf("accepted %+v", n)
		}
	})
}
