package kpos

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
)

// Fixed test keys, generated once for these tests and used nowhere else.
// The two P-256 keys are the ECDH pair of the pinned KDF vector; the
// P-521 keys are the signing keys of the fuzz seeds.
const (
	// kioskECDHPEM is "our" P-256 encryption key, PKCS#8 like the
	// Embed Code's ec_private_key_pkcs8.pem.
	kioskECDHPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgczj+ZHWzAjaNifJy
kqgn4wC45eBt7o8WRM9XnWs+Ak2hRANCAAQao3YqRDLd0VA2eqJakAXy4Tqf3Z9L
b2TcogBKNoM4fevO9nCfEa0KgOgc8xMfzTD78ucvqMmnCZS1x3DBvXk5
-----END PRIVATE KEY-----
`
	// finexusECDHPEM plays Finexus's P-256 key.
	finexusECDHPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPzPY3paBmk1XPC8d
GuKDj06VObGifWC1Wr9ZYj/scb2hRANCAAQFiRzb4+IxyUkXHhhbSt+U90yHbedw
BTnJxEc9vGPWEirXCF5FUXNewfIp0lZ9YJYkbHfuPJIZ8xb4gNSW8xkO
-----END PRIVATE KEY-----
`
	// kioskSignPEM is "our" P-521 signing key, SEC1 like Appendix 1's
	// ec_private_key_521.pem.
	kioskSignPEM = `-----BEGIN EC PRIVATE KEY-----
MIHcAgEBBEIBm4RQwmHx7zydmksSjQEwhLiNrifsQRtb2tSJTmQzrhdEMOfZ1G8t
iY16aIjgyB0LWgRenMjuxY8MX3Z8eq1SJOugBwYFK4EEACOhgYkDgYYABAG3i325
jjb2JLuOqCDWtomEe6x8PNXnGm/f4IHRqazC7vLYCOQlyeNI349NFokKrJ1Egron
MWoGsoR3cHCVA3wMWABqqyx7rklIfgDmvKOYR6HdKRgme/v0yQF7yJ88ln8FCFI7
+/mnClXrWGaMHBmsoyPUK3y3pw27R0EeyizYsg94+g==
-----END EC PRIVATE KEY-----
`
	// finexusSignPEM plays Finexus's P-521 signing key.
	finexusSignPEM = `-----BEGIN EC PRIVATE KEY-----
MIHcAgEBBEIA6TlzlYNHWY0nP2sVCz5K21lt4Gv9/eRo9JkSl4SH1qCnQWVdfJVA
2zm6dBJEAPFNtHPKl9wGCgZZyA8r2y39U9igBwYFK4EEACOhgYkDgYYABAD5OOKd
2sUgaxfqQPiflSUBP2p1dYjbjnrzPz6QRPi2TxfUwO6X1acePIn0SM/V8vusAi2z
aSnwJ1ozbIFxL+guMQEPkULYGynTAUNTnhPaTX2VLZnEiPNTNagfsPdwx/QnpeQy
tc1Q9SvhvOlnTGc1icBLP22FHX8k3r8cnvlJK+/mrA==
-----END EC PRIVATE KEY-----
`
)

// P-256 signing keys for FuzzOpen: KPOS expects P-521, but P-521 runs as
// plain (and, under -fuzz, coverage-instrumented) Go, slow enough that
// the fuzzer's minimiser stalls for the whole run; P-256 is assembly.
// Verify's parsing does not depend on the curve.
const (
	kioskFuzzSignPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGcrJr8J3XI5i4objNClzfg9yo//1Uyk6OWVLXB6+J1GoAoGCCqGSM49
AwEHoUQDQgAEM+puGtTtFRxnuk6s7ds2WJJMf83aBj82obz2TTyyhczCS2W1DpJe
2pdeUlwXkLmQhS0V8gYzLcDpYPH/HRch+Q==
-----END EC PRIVATE KEY-----
`
	finexusFuzzSignPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIK5w6FNuWRhP5JrhaTha/TMjXonjqmqzUZXgmp+lf2gDoAoGCCqGSM49
AwEHoUQDQgAEYHmXnMqnVimEXUsbDPgHGHqb5G2uAgtmLShn8hqzuswB6uMATjEE
gAjhdjvq/3ZZBjm9AEvUVIoD5oJzzqb0rg==
-----END EC PRIVATE KEY-----
`
)

// testEPKKid is the epk kid the fixed keys' messages carry.
const testEPKKid = "0b6c2a49-3d1e-4f3a-9a57-6f1f3c2d8e10"

func mustPriv(t testing.TB, pemText string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ParsePrivateKeyPEM([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func genKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testPeers is both ends of a KPOS link on the fixed keys: kiosk seals
// what finexus opens and the other way round.
func testPeers(t testing.TB) (kiosk, finexus *Keys) {
	t.Helper()
	kE, fE := mustPriv(t, kioskECDHPEM), mustPriv(t, finexusECDHPEM)
	kS, fS := mustPriv(t, kioskSignPEM), mustPriv(t, finexusSignPEM)
	cek, err := DeriveKey(kE, &fE.PublicKey, OtherInfoRaw)
	if err != nil {
		t.Fatal(err)
	}
	kiosk = &Keys{CEK: cek, Ours: kS, Theirs: &fS.PublicKey,
		Header: Header{EPK: &kE.PublicKey, EPKKid: testEPKKid, Kid: "123"}}
	finexus = &Keys{CEK: cek, Ours: fS, Theirs: &kS.PublicKey,
		Header: Header{EPK: &fE.PublicKey, EPKKid: "e86d4cfb-1d73-42d6-90ee-de5be67025e9", Kid: "123"}}
	return kiosk, finexus
}

// fuzzPeers is testPeers with the P-256 signing keys.
func fuzzPeers(t testing.TB) (kiosk, finexus *Keys) {
	t.Helper()
	kiosk, finexus = testPeers(t)
	kS, fS := mustPriv(t, kioskFuzzSignPEM), mustPriv(t, finexusFuzzSignPEM)
	kiosk.Ours, kiosk.Theirs = kS, &fS.PublicKey
	finexus.Ours, finexus.Theirs = fS, &kS.PublicKey
	return kiosk, finexus
}
