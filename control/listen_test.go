package control

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/kioskd/kioskd/protocol/mobypay"
)

func TestListenRemovesAStaleSocketAndRefusesALiveOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "kioskd.sock")
	// A crash leaves the socket file with nobody behind it.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket file is gone already: %v", err)
	}

	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if second, err := Listen(path); err == nil {
		second.Close()
		t.Fatal("a second Listen on a socket that answers succeeded")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the refused Listen removed the running daemon's socket: %v", err)
	}
}

func TestConnectAddrs(t *testing.T) {
	got := ConnectAddrs(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555})
	if want := []string{"192.0.2.7:5555"}; !slices.Equal(got, want) {
		t.Errorf("a specific address: %v, want %v", got, want)
	}
	got = ConnectAddrs(&net.TCPAddr{IP: net.IPv4zero, Port: 5555})
	if len(got) == 0 {
		t.Fatal("listening on all addresses gave none to connect to")
	}
	for _, a := range got {
		host, port, err := net.SplitHostPort(a)
		ip := net.ParseIP(host)
		if err != nil || port != "5555" || ip == nil || ip.To4() == nil {
			t.Errorf("%q is not an IPv4 host:5555", a)
		}
		if ip.IsLoopback() && len(got) > 1 {
			t.Errorf("loopback %q offered beside other addresses", a)
		}
	}
}

func TestMuxListsEveryPattern(t *testing.T) {
	var hit atomic.Int32
	h := func(w http.ResponseWriter, r *http.Request) { hit.Add(1) }
	mux, patterns := Mux([]Route{{Pattern: "GET /a", Handler: h}, {Pattern: "POST /b", Handler: h}})
	if want := []string{"GET /a", "POST /b"}; !slices.Equal(patterns, want) {
		t.Fatalf("patterns %v, want %v", patterns, want)
	}
	if _, p := mux.Handler(&http.Request{Method: "POST", URL: mustURL(t, "/b")}); p != "POST /b" {
		t.Errorf("POST /b routed to %q", p)
	}
}

// Every counter of the server reaches status under its own name: each
// is set to a different number and read back through the JSON.
func TestPOSStatsOfCopiesEveryCounter(t *testing.T) {
	var s mobypay.Stats
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		v.Field(i).Addr().Interface().(*atomic.Int64).Store(int64(i + 1))
	}
	b, err := json.Marshal(POSStatsOf(&s))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, n := range got {
		seen[n] = true
	}
	for i := range v.NumField() {
		if !seen[int64(i+1)] {
			t.Errorf("mobypay.Stats.%s is not in status", v.Type().Field(i).Name)
		}
	}
}

func mustURL(t *testing.T, path string) *url.URL {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
