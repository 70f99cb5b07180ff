package kpos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Endpoint is the kiosk's side of the link: the receiver of 0025
// notifications on its own listening socket (HTTPS, or plain HTTP when
// the config opts in), and the serial receiver when a cable is
// configured. Both run and stop together.
type Endpoint struct {
	hs      *http.Server
	ln      net.Listener
	tlsCert string
	tlsKey  string
	serial  *SerialReceiver // nil without a cable
	log     *slog.Logger
}

// Listen opens c.Listen and mounts recv at c.Path; serial may be nil.
// The server's limits are those of an endpoint that the acquirer's
// host, and anyone else on the network, can reach: a slow or oversized
// request is cut off instead of holding a connection open.
func Listen(c Config, recv http.Handler, serial *SerialReceiver, log *slog.Logger) (*Endpoint, error) {
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("kpos.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(c.Path, recv)
	return &Endpoint{
		hs: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
			WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		ln: ln, tlsCert: c.TLSCert, tlsKey: c.TLSKey, serial: serial, log: log,
	}, nil
}

// Addr is where the notifications are received.
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// Run serves until ctx ends or serving fails. The serial receiver stops
// with the HTTP one either way, and Run returns only once both have.
func (e *Endpoint) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	if e.serial != nil {
		wg.Go(func() { e.serial.Run(ctx) })
	}
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e.hs.Shutdown(sctx)
	})
	var err error
	if e.tlsCert != "" {
		err = e.hs.ServeTLS(e.ln, e.tlsCert, e.tlsKey)
	} else {
		e.log.Warn("kpos notifications on plain HTTP (allow_plain_http)", "listen", e.Addr())
		err = e.hs.Serve(e.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err // the caller names the receiver
}
