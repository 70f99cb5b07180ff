//go:build linux

package kpos

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/device/serial"
)

func TestSerialOverPTY(t *testing.T) {
	master, path, err := serial.OpenPTY()
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	port, err := serial.Open(serial.Config{Device: path, Baud: 9600, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}

	// The kiosk's side as the service runs it: the SerialReceiver on a
	// real serial.Port, handing notifications on before it answers.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	notes := make(chan SerialNotification, 4)
	opened := false
	recv := NewSerialReceiver(SerialReceiverConfig{
		Open: func() (io.ReadWriteCloser, error) {
			if opened { // once only: the pty's other end is the test's
				<-ctx.Done()
				return nil, ctx.Err()
			}
			opened = true
			return port, nil
		},
	}, func(_ context.Context, n SerialNotification, _ []byte) (string, error) {
		notes <- n
		return ResultSuccess, nil
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		recv.Run(ctx)
	}()

	// The fake KPOS: writes frames on the master, reads the answers back.
	replies := NewFrameReader(master, 0)
	send := func(pieces ...string) {
		t.Helper()
		for _, p := range pieces {
			if _, err := master.Write([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	expectReply := func(want string) {
		t.Helper()
		master.SetReadDeadline(time.Now().Add(5 * time.Second))
		data, err := replies.Next()
		if err != nil {
			t.Fatalf("fake KPOS waiting for %s: %v", want, err)
		}
		code, err := ParseSerialResponse(data)
		if err != nil || code != want {
			t.Fatalf("fake KPOS got %q (%v), want resultCode %s", data, err, want)
		}
	}
	// The kiosk hands a notification on before it answers.
	expectNote := func(want SerialNotification) {
		t.Helper()
		select {
		case n := <-notes:
			if n != want {
				t.Fatalf("kiosk got %+v\nwant     %+v", n, want)
			}
		default:
			t.Fatal("answered 00000 without handing on a notification")
		}
	}

	// A notification in pieces, after some line noise.
	frame := string(AppendFrame(nil, []byte(goldenZeroed)))
	send("\x00\r\n", frame[:1], frame[1:60], frame[60:150], frame[150:])
	expectReply("00000")
	expectNote(goldenNotification)

	// A frame damaged on the line.
	damaged := strings.Replace(frame, "PRE", "PRF", 1)
	send(damaged)
	expectReply(DefaultSerialRefusals.Corrupt)

	// An intact frame that is no 0025 we can read.
	send(string(AppendFrame(nil, []byte(strings.Replace(goldenSpaced, "PRE", "ABC", 1)))))
	expectReply(DefaultSerialRefusals.Invalid)

	// An echoed 0026 gets no answer: the next reply belongs to the frame
	// after it.
	n2 := goldenNotification
	n2.MRN, n2.PaymentType, n2.AmountSen = "exit-2", PaymentTypeSaleCompletion, 700
	d2, err := n2.AppendData(nil)
	if err != nil {
		t.Fatal(err)
	}
	send(string(AppendFrame(nil, AppendResponseData(nil, "00000"))) + string(AppendFrame(nil, d2)))
	expectReply("00000")
	expectNote(n2)

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("kiosk side still running 5s after cancel")
	}
	expectNoReceiverGoroutines(t)
}
