package mobypay

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// The seed vectors are kept in testdata so the module tests stand alone;
// TestVectorsMatchSpec keeps the copy honest when the spec is beside us.
const (
	vectorsPath     = "testdata/mobypay-seed-vectors.jsonl"
	specVectorsPath = "../../../shared/spec/vectors/mobypay-seed-vectors.jsonl"
)

func TestVectorsMatchSpec(t *testing.T) {
	spec, err := os.ReadFile(specVectorsPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("shared/spec is not beside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(spec) != string(ours) {
		t.Fatalf("%s differs from %s: copy the spec's vectors again", vectorsPath, specVectorsPath)
	}
}

type vector struct {
	Note      string `json:"note"`
	Secret    string `json:"secret"`
	Wire      string `json:"wire"`
	Canonical string `json:"canonical"`
	Valid     bool   `json:"valid"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open(vectorsPath)
	if err != nil {
		t.Fatalf("seed vectors: %v", err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("vector line: %v", err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestSeedVectors(t *testing.T) {
	vs := loadVectors(t)
	valid, invalid := 0, 0
	for _, v := range vs {
		t.Run(v.Note, func(t *testing.T) {
			c := NewCodec([]byte(v.Secret))
			err := c.Open([]byte(v.Wire))
			if got := string(c.Canonical()); got != v.Canonical {
				t.Errorf("canonical:\n got %s\nwant %s", got, v.Canonical)
			}
			if v.Valid {
				valid++
				if err != nil {
					t.Fatalf("valid vector refused: %v", err)
				}
				var m Message
				if err := c.Decode(&m); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if m.Type == "" || m.TxnID == "" || m.Nonce == "" {
					t.Errorf("decoded message misses fields: %+v", m)
				}
			} else {
				invalid++
				if !errors.Is(err, ErrSignature) {
					t.Fatalf("invalid vector: got %v, want ErrSignature", err)
				}
			}
		})
	}
	if valid != 5 || invalid != 1 {
		t.Fatalf("vectors: %d valid, %d invalid; want 5 and 1", valid, invalid)
	}
}
