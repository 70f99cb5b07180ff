package kpostest

import (
	"crypto/ecdsa"

	"github.com/kioskd/kioskd/protocol/kpos"
)

// Fixed test keys, generated once for kpos's tests; they are public, so
// nothing but tests may use them. They must not change: the two P-256
// ECDH keys are the pair of kpos's pinned KDF vector, and kpos's FuzzOpen
// seeds (testdata/fuzz) are sealed with them and the fuzz signing keys.
const (
	// KioskECDHPEM is "our" P-256 encryption key, PKCS#8 like the
	// Embed Code's ec_private_key_pkcs8.pem.
	KioskECDHPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgczj+ZHWzAjaNifJy
kqgn4wC45eBt7o8WRM9XnWs+Ak2hRANCAAQao3YqRDLd0VA2eqJakAXy4Tqf3Z9L
b2TcogBKNoM4fevO9nCfEa0KgOgc8xMfzTD78ucvqMmnCZS1x3DBvXk5
-----END PRIVATE KEY-----
`
	// FinexusECDHPEM plays Finexus's P-256 key.
	FinexusECDHPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPzPY3paBmk1XPC8d
GuKDj06VObGifWC1Wr9ZYj/scb2hRANCAAQFiRzb4+IxyUkXHhhbSt+U90yHbedw
BTnJxEc9vGPWEirXCF5FUXNewfIp0lZ9YJYkbHfuPJIZ8xb4gNSW8xkO
-----END PRIVATE KEY-----
`
	// KioskSignPEM is "our" P-521 signing key, SEC1 like Appendix 1's
	// ec_private_key_521.pem.
	KioskSignPEM = `-----BEGIN EC PRIVATE KEY-----
MIHcAgEBBEIBm4RQwmHx7zydmksSjQEwhLiNrifsQRtb2tSJTmQzrhdEMOfZ1G8t
iY16aIjgyB0LWgRenMjuxY8MX3Z8eq1SJOugBwYFK4EEACOhgYkDgYYABAG3i325
jjb2JLuOqCDWtomEe6x8PNXnGm/f4IHRqazC7vLYCOQlyeNI349NFokKrJ1Egron
MWoGsoR3cHCVA3wMWABqqyx7rklIfgDmvKOYR6HdKRgme/v0yQF7yJ88ln8FCFI7
+/mnClXrWGaMHBmsoyPUK3y3pw27R0EeyizYsg94+g==
-----END EC PRIVATE KEY-----
`
	// FinexusSignPEM plays Finexus's P-521 signing key.
	FinexusSignPEM = `-----BEGIN EC PRIVATE KEY-----
MIHcAgEBBEIA6TlzlYNHWY0nP2sVCz5K21lt4Gv9/eRo9JkSl4SH1qCnQWVdfJVA
2zm6dBJEAPFNtHPKl9wGCgZZyA8r2y39U9igBwYFK4EEACOhgYkDgYYABAD5OOKd
2sUgaxfqQPiflSUBP2p1dYjbjnrzPz6QRPi2TxfUwO6X1acePIn0SM/V8vusAi2z
aSnwJ1ozbIFxL+guMQEPkULYGynTAUNTnhPaTX2VLZnEiPNTNagfsPdwx/QnpeQy
tc1Q9SvhvOlnTGc1icBLP22FHX8k3r8cnvlJK+/mrA==
-----END EC PRIVATE KEY-----
`
)

// P-256 signing keys for kpos's FuzzOpen: KPOS expects P-521, but P-521 runs as
// plain (and, under -fuzz, coverage-instrumented) Go, slow enough that
// the fuzzer's minimiser stalls for the whole run; P-256 is assembly.
// Verify's parsing does not depend on the curve.
const (
	// KioskFuzzSignPEM and FinexusFuzzSignPEM sign kpos's FuzzOpen seeds.
	KioskFuzzSignPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGcrJr8J3XI5i4objNClzfg9yo//1Uyk6OWVLXB6+J1GoAoGCCqGSM49
AwEHoUQDQgAEM+puGtTtFRxnuk6s7ds2WJJMf83aBj82obz2TTyyhczCS2W1DpJe
2pdeUlwXkLmQhS0V8gYzLcDpYPH/HRch+Q==
-----END EC PRIVATE KEY-----
`
	FinexusFuzzSignPEM = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIK5w6FNuWRhP5JrhaTha/TMjXonjqmqzUZXgmp+lf2gDoAoGCCqGSM49
AwEHoUQDQgAEYHmXnMqnVimEXUsbDPgHGHqb5G2uAgtmLShn8hqzuswB6uMATjEE
gAjhdjvq/3ZZBjm9AEvUVIoD5oJzzqb0rg==
-----END EC PRIVATE KEY-----
`
)

// The epk kids the fixed keys' messages carry.
const (
	KioskEPKKid   = "0b6c2a49-3d1e-4f3a-9a57-6f1f3c2d8e10"
	FinexusEPKKid = "e86d4cfb-1d73-42d6-90ee-de5be67025e9"
)

// MustPrivateKey parses one of the fixed PEM keys. It panics on anything
// else that does not parse: a fixed key that stopped parsing is a broken
// build, not a test failure.
func MustPrivateKey(pemText string) *ecdsa.PrivateKey {
	k, err := kpos.ParsePrivateKeyPEM([]byte(pemText))
	if err != nil {
		panic("kpostest: " + err.Error())
	}
	return k
}

// Peers is both ends of a KPOS link on the fixed keys: kiosk seals what
// finexus opens and the other way round.
func Peers() (kiosk, finexus *kpos.Keys) {
	kE, fE := MustPrivateKey(KioskECDHPEM), MustPrivateKey(FinexusECDHPEM)
	kS, fS := MustPrivateKey(KioskSignPEM), MustPrivateKey(FinexusSignPEM)
	cek, err := kpos.DeriveKey(kE, &fE.PublicKey, kpos.OtherInfoRaw)
	if err != nil {
		panic("kpostest: " + err.Error())
	}
	kiosk = &kpos.Keys{CEK: cek, Ours: kS, Theirs: &fS.PublicKey,
		Header: kpos.Header{EPK: &kE.PublicKey, EPKKid: KioskEPKKid, Kid: "123"}}
	finexus = &kpos.Keys{CEK: cek, Ours: fS, Theirs: &kS.PublicKey,
		Header: kpos.Header{EPK: &fE.PublicKey, EPKKid: FinexusEPKKid, Kid: "123"}}
	return kiosk, finexus
}

// FuzzPeers is Peers with the P-256 signing keys.
func FuzzPeers() (kiosk, finexus *kpos.Keys) {
	kiosk, finexus = Peers()
	kS, fS := MustPrivateKey(KioskFuzzSignPEM), MustPrivateKey(FinexusFuzzSignPEM)
	kiosk.Ours, kiosk.Theirs = kS, &fS.PublicKey
	finexus.Ours, finexus.Theirs = fS, &kS.PublicKey
	return kiosk, finexus
}
