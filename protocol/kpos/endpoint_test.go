package kpos_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kioskd/kioskd/protocol/kpos"
	"github.com/kioskd/kioskd/protocol/kpos/kpostest"
)

// The endpoint serves the receiver at its path only, over plain HTTP or
// TLS as configured, and Run returns once both it and the serial
// receiver have stopped: the serial line is closed by then.
func TestEndpointServesAndStopsTogether(t *testing.T) {
	cert, key, pool, err := kpostest.TLSPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  kpos.Config
	}{
		{"plain", kpos.Config{Listen: "127.0.0.1:0", Path: "/kpos/notify", AllowPlainHTTP: true}},
		{"tls", kpos.Config{Listen: "127.0.0.1:0", Path: "/kpos/notify", TLSCert: cert, TLSKey: key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "received") })
			kiosk, cable := net.Pipe()
			opened := make(chan struct{}, 1)
			serial := kpos.NewSerialReceiver(kpos.SerialReceiverConfig{
				Open: func() (io.ReadWriteCloser, error) {
					select {
					case opened <- struct{}{}:
						return kiosk, nil
					default:
						return nil, errors.New("opened once already")
					}
				},
				Log: slog.New(slog.DiscardHandler),
			}, func(context.Context, kpos.SerialNotification, []byte) (string, error) { return kpos.ResultSuccess, nil })
			ep, err := kpos.Listen(tc.cfg, recv, serial, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- ep.Run(ctx) }()

			scheme := "http"
			hc := &http.Client{Timeout: 5 * time.Second}
			if tc.cfg.TLSCert != "" {
				scheme = "https"
				hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			}
			for path, want := range map[string]int{"/kpos/notify": http.StatusOK, "/elsewhere": http.StatusNotFound} {
				res, err := hc.Get(scheme + "://" + ep.Addr() + path)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
				}
			}
			select {
			case <-opened:
			case <-time.After(5 * time.Second):
				t.Fatal("the serial line was never opened")
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run after a stop: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after ctx ended")
			}
			// Run has returned, so the serial receiver has closed the
			// line: the cable's end reads EOF at once.
			cable.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := cable.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("serial line after Run returned: read %v, want it closed", err)
			}
		})
	}
}

func TestListenRefusesABusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := kpos.Listen(kpos.Config{Listen: ln.Addr().String(), Path: "/"}, http.NotFoundHandler(), nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Listen on an address in use succeeded")
	}
}
