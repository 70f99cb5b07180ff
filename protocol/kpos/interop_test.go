package kpos_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kioskd/kioskd/protocol/kpos"
)

// The tests in this file check the codec against an independent Finexus
// side written in Node.js with the npm jose package and node:crypto
// (testdata/node/interop.mjs), in both directions. They skip without node
// or without `npm ci` having been run in testdata/node, unless CI is set.

const nodeDir = "testdata/node"

func nodeOrSkip(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "jose", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and %s/node_modules (npm ci) are required in CI for the Node.js interop test: %v", nodeDir, err)
		}
		t.Skipf("skipping the Node.js interop test (needs node and `npm ci` in %s): %v", nodeDir, err)
	}
	return node
}

// runNode runs interop.mjs with a deadline and returns its stdout; stderr
// goes into the failure message.
func runNode(t *testing.T, node string, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"interop.mjs"}, args...)...)
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node interop.mjs %s: %v\n%s", args[0], err, stderr.Bytes())
	}
	return out
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// interopSetup makes fresh keys for both sides, writes Finexus's private
// keys and our public keys where node reads them, and returns our Keys as
// kioskd would load them from PEM.
func interopSetup(t *testing.T) (dir string, kiosk *kpos.Keys, finexusECDH *ecdsa.PublicKey, epkKid string) {
	t.Helper()
	dir = t.TempDir()
	kE, fE := genKey(t, elliptic.P256()), genKey(t, elliptic.P256())
	kS, fS := genKey(t, elliptic.P521()), genKey(t, elliptic.P521())

	der, err := x509.MarshalPKCS8PrivateKey(fE)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "finexus-ecdh.pem", "PRIVATE KEY", der)
	if der, err = x509.MarshalECPrivateKey(fS); err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "finexus-sign.pem", "EC PRIVATE KEY", der)
	for name, pub := range map[string]*ecdsa.PublicKey{"kiosk-ecdh.pub.pem": &kE.PublicKey, "kiosk-sign.pub.pem": &kS.PublicKey,
		"finexus-ecdh.pub.pem": &fE.PublicKey, "finexus-sign.pub.pem": &fS.PublicKey} {
		if der, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			t.Fatal(err)
		}
		writePEM(t, dir, name, "PUBLIC KEY", der)
	}
	epkKid = uuid.NewString()
	if err := os.WriteFile(filepath.Join(dir, "finexus-epk-kid.txt"), []byte(epkKid+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Our side reads Finexus's public keys through our own parsers.
	load := func(name string) *ecdsa.PublicKey {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		k, err := kpos.ParsePublicKeyPEM(b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	fEPub, fSPub := load("finexus-ecdh.pub.pem"), load("finexus-sign.pub.pem")
	cek, err := kpos.DeriveKey(kE, fEPub, kpos.OtherInfoRaw)
	if err != nil {
		t.Fatal(err)
	}
	kiosk = &kpos.Keys{CEK: cek, Ours: kS, Theirs: fSPub,
		Header: kpos.Header{EPK: &kE.PublicKey, EPKKid: uuid.NewString(), Kid: "123"}}
	return dir, kiosk, fEPub, epkKid
}

func TestNodeInterop(t *testing.T) {
	node := nodeOrSkip(t)
	dir, kiosk, finexusECDH, epkKid := interopSetup(t)
	note := strings.Replace(sampleNotification, "8e8c6e61-f9e4-40f0-a4a5-9e561579c901", uuid.NewString(), 1)
	if err := os.WriteFile(filepath.Join(dir, "notification.json"), []byte(note), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("node to Go", func(t *testing.T) {
		const n = 20
		out := runNode(t, node, nil, "finexus", dir, strconv.Itoa(n))
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 4*kpos.MaxBody)
		if !sc.Scan() {
			t.Fatalf("no output: %q", out)
		}
		var first struct{ CEK string }
		if err := json.Unmarshal(sc.Bytes(), &first); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		if first.CEK != hex.EncodeToString(kiosk.CEK) {
			t.Fatalf("node derived content key %s, Go %x", first.CEK, kiosk.CEK)
		}
		count, plusSlash := 0, false
		for sc.Scan() {
			var m struct{ Body, Signature string }
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%v: %s", err, sc.Bytes())
			}
			count++
			plusSlash = plusSlash || strings.Contains(m.Signature, "%2B") || strings.Contains(m.Signature, "%2F")
			mti, pt, err := kiosk.Open([]byte(m.Body), m.Signature)
			if err != nil || mti != "0025" || string(pt) != note {
				t.Fatalf("message %d: Open: %q %q %v\nbody %s\nsignature %s", count, mti, pt, err, m.Body, m.Signature)
			}
			// The signature also verifies un-encoded, as a lenient peer
			// might send it.
			raw, _ := url.QueryUnescape(m.Signature)
			if err := kpos.Verify(kiosk.Theirs, []byte(m.Body), raw); err != nil {
				t.Fatalf("message %d: un-encoded signature: %v", count, err)
			}
			h, err := kpos.ReadHeader(m.Body[4:])
			if err != nil || h.Alg != kpos.AlgDir || h.Enc != kpos.EncA256CBCHS || h.Kid != "123" ||
				h.EPK == nil || h.EPK.Kid != epkKid || !h.EPK.Matches(finexusECDH) {
				t.Fatalf("message %d: header %s (%v)", count, h.Raw, err)
			}
			if !bytes.HasPrefix(h.Raw, []byte(`{"epk":{"kty":"EC","crv":"P-256","kid":"`)) {
				t.Errorf("node's header is not in the samples' order: %s", h.Raw)
			}
			// A flipped byte anywhere is refused.
			bad := []byte(m.Body)
			bad[count*7%len(bad)] ^= 1
			if _, _, err := kiosk.Open(bad, m.Signature); err == nil {
				t.Fatalf("message %d: tampered copy opened", count)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("read %d messages, want %d", count, n)
		}
		t.Logf("%d node messages opened; some signature had %%2B or %%2F: %v", n, plusSlash)
	})

	t.Run("Go to node", func(t *testing.T) {
		type sent struct {
			Body      string `json:"body"`
			Signature string `json:"signature"`
			want      string // plaintext, "" when node must refuse
		}
		var msgs []sent
		for i := range 20 {
			pt := `{"resultCode":"00000","mrn":"` + uuid.NewString() + `","n":` + strconv.Itoa(i) + `}`
			body, sig, err := kiosk.Seal("0026", []byte(pt))
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, sent{string(body), sig, pt})
		}
		body, sig, _ := kiosk.Seal("0026", []byte(`{"resultCode":"00000"}`))
		tampered := []byte(body)
		tampered[len(tampered)-5] ^= 1
		stranger := *kiosk
		stranger.Ours = genKey(t, elliptic.P521())
		_, strangerSig, _ := stranger.Seal("0026", []byte(`{"resultCode":"00000"}`))
		otherCEK := *kiosk
		otherCEK.CEK = randomCEK(t)
		otherBody, otherSig, _ := otherCEK.Seal("0026", []byte(`{"resultCode":"00000"}`))
		msgs = append(msgs,
			sent{Body: string(tampered), Signature: sig},
			sent{Body: string(body), Signature: strangerSig},
			sent{Body: string(otherBody), Signature: otherSig},
		)

		var stdin bytes.Buffer
		enc := json.NewEncoder(&stdin)
		for _, m := range msgs {
			if err := enc.Encode(m); err != nil {
				t.Fatal(err)
			}
		}
		out := runNode(t, node, stdin.Bytes(), "kiosk", dir)
		lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
		if len(lines) != len(msgs) {
			t.Fatalf("node answered %d lines for %d messages:\n%s", len(lines), len(msgs), out)
		}
		for i, line := range lines {
			var r struct {
				OK        bool
				MTI       string
				Plaintext string
				Header    map[string]any
				Error     string
			}
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("line %d: %v: %s", i, err, line)
			}
			m := msgs[i]
			if m.want == "" {
				if r.OK {
					t.Errorf("message %d: node accepted a bad message", i)
				}
				continue
			}
			if !r.OK || r.MTI != "0026" || r.Plaintext != m.want {
				t.Fatalf("message %d: node: %s", i, line)
			}
			epk, _ := r.Header["epk"].(map[string]any)
			if r.Header["alg"] != kpos.AlgDir || r.Header["enc"] != kpos.EncA256CBCHS || r.Header["kid"] != "123" ||
				epk == nil || epk["kid"] != kiosk.Header.EPKKid {
				t.Fatalf("message %d: node read header %v", i, r.Header)
			}
		}
	})
}
