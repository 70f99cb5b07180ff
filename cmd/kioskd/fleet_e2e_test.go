package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/control"
	"github.com/kioskd/kioskd/fleet"
	"github.com/kioskd/kioskd/fleet/fleettest"
	"github.com/kioskd/kioskd/protocol/mobypay/possim"
)

var (
	watchSeqRE     = regexp.MustCompile(`^\S+ KIOSK-T seq=(\d+) (\w+)`)
	watchShippedRE = regexp.MustCompile(`^\S+ KIOSK-T online .* shipped=(\d+)$`)
)

// TestFleetShipsEveryPayment: a kioskd with [fleet] on ships its journal
// to a real broker as payments happen. What `kioskd fleet watch` prints
// has every seq from 1 to what the kiosk's retained status says it
// shipped, each once, in order, and every payment's approval and vend.
func TestFleetShipsEveryPayment(t *testing.T) {
	b := fleettest.Start(t)
	k := startKioskConfig(t, fmt.Sprintf("[fleet]\nenabled = true\nbroker = %q\nstatus_every = \"1s\"\n", b.URL()), nil)
	k.sim(t, possim.Approve)

	lines := make(chan string, 1024)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- fleet.Watch(ctx, fleet.Config{Broker: b.URL()}, pw); pw.Close() }()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-watched; err != nil {
			t.Errorf("watch: %v", err)
		}
	})

	// The kiosk's retained status is the first thing a new subscriber
	// gets: once it is here, Watch listens, and no payment's record can
	// go by unseen.
	for subscribed := false; !subscribed; {
		select {
		case l := <-lines:
			subscribed = watchShippedRE.MatchString(l)
		case <-time.After(10 * time.Second):
			t.Fatal("no retained status from the kiosk")
		}
	}

	const payments = 5
	for i := range payments {
		if code, out, errs := kioskd(t, "", "pay", "-amount", fmt.Sprintf("1.%02d", i), "-config", k.cfgPath); code != exitOK {
			t.Fatalf("payment %d: exit %d\n%s%s", i, code, out, errs)
		}
	}

	// Every seq up to what the status says was shipped, each once and in
	// order; the payments' records among them.
	seen := map[uint64]int{}
	var order []uint64
	released := 0
	deadline := time.After(30 * time.Second)
	for {
		var line string
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended")
			}
			line = l
		case <-deadline:
			t.Fatalf("not every record arrived: saw %v", order)
		}
		if m := watchSeqRE.FindStringSubmatch(line); m != nil {
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			if seen[seq]++; seen[seq] == 1 {
				order = append(order, seq)
			}
			if strings.Contains(line, "state=approved vend=released") {
				released++
			}
			continue
		}
		m := watchShippedRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		shipped, _ := strconv.ParseUint(m[1], 10, 64)
		if released < payments || shipped == 0 || uint64(len(order)) < shipped {
			continue // more to come
		}
		for i, seq := range order[:shipped] {
			if seq != uint64(i+1) {
				t.Fatalf("seq %d arrived in position %d: %v", seq, i+1, order)
			}
		}
		for seq, n := range seen {
			if n > 1 {
				t.Errorf("seq %d arrived %d times (a resend without a restart)", seq, n)
			}
		}
		t.Logf("%d payments: %d records shipped, each once, in order", payments, shipped)
		checkFleetStatus(t, k, b.URL(), shipped)
		return
	}
}

// checkFleetStatus: kioskd status says the kiosk is shipping, in words
// and in JSON of the shape docs/control-api.json publishes.
func checkFleetStatus(t *testing.T, k *kiosk, broker string, shipped uint64) {
	t.Helper()
	code, out, errs := kioskd(t, "", "status", "-config", k.cfgPath)
	if code != exitOK || !strings.Contains(out, "\nfleet: connected to "+broker+", shipped through seq ") {
		t.Fatalf("kioskd status: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = kioskd(t, "", "status", "-json", "-config", k.cfgPath)
	var st control.Status
	if code != exitOK || json.Unmarshal([]byte(out), &st) != nil || st.Fleet == nil {
		t.Fatalf("kioskd status -json: exit %d\n%s%s", code, out, errs)
	}
	if f := st.Fleet; !f.Connected || f.ShippedSeq < shipped || f.Broker != broker {
		t.Errorf("status fleet %+v, want connected to %s, shipped through at least %d", f, broker, shipped)
	}
	doc := loadAPIDoc(t, "../../docs/control-api.json")
	resp := doc.response("GET /v1/status", "200")
	schema := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	v, err := decodeJSON([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.check("status", schema, v) {
		t.Errorf("status -json with the fleet on: %s", e)
	}
}
