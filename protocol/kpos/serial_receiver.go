package kpos

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"
)

// SerialNotificationFunc records a 0025 that came over the serial cable
// and returns the resultCode to answer with, the unknown-mrn code
// included, as NotificationFunc does for HTTP. It must return only once
// the outcome is durable; an error leaves the frame unanswered, so that
// KPOS sends it again.
type SerialNotificationFunc func(ctx context.Context, n SerialNotification, data []byte) (resultCode string, err error)

// SerialReceiverConfig configures the serial 0025 receiver. Zero values
// take the defaults noted.
//
// Unlike ReceiverConfig it has no ReplyMTI and no Codes: Appendix 5 fixes
// the answer's MTI (0026); a serial frame has no signature to refuse; and
// a notification that cannot be recorded is not answered at all, which is
// what makes KPOS send it again (the HTTP receiver's Busy).
type SerialReceiverConfig struct {
	// Open opens the line. It is called again, after a back-off, whenever
	// the line cannot be opened or ends (a USB adapter unplugged, the
	// terminal power-cycled). Close must unblock a Read in progress, and
	// Read should time out now and then (device/serial's ports do both);
	// a Read error matching os.ErrClosed or io.EOF ends the line.
	Open func() (io.ReadWriteCloser, error)
	// Refusals answer frames that cannot be taken (DefaultSerialRefusals);
	// each code must pass SerialRefusals.Validate.
	Refusals SerialRefusals
	// Reopen back-off: MinBackoff, doubling to MaxBackoff (1 s, 30 s),
	// back to MinBackoff once the line opens.
	MinBackoff, MaxBackoff time.Duration

	Log *slog.Logger
}

// SerialReceiver keeps the serial notification link open and answers the
// 0025 frames on it, journaling each through its SerialNotificationFunc
// before answering.
type SerialReceiver struct {
	cfg SerialReceiverConfig
	h   SerialNotificationFunc
	log *slog.Logger
}

// NewSerialReceiver returns the receiver; Run starts it.
func NewSerialReceiver(cfg SerialReceiverConfig, h SerialNotificationFunc) *SerialReceiver {
	if cfg.Refusals == (SerialRefusals{}) {
		cfg.Refusals = DefaultSerialRefusals
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &SerialReceiver{cfg: cfg, h: h, log: cfg.Log.With("component", "kpos-serial")}
}

// Run opens the line and serves it, reopening it with back-off whenever it
// fails, until ctx ends. When Run returns the line is closed and every
// goroutine it started has ended.
func (r *SerialReceiver) Run(ctx context.Context) {
	backoff := r.cfg.MinBackoff
	for ctx.Err() == nil {
		port, err := r.cfg.Open()
		if err != nil {
			r.log.Warn("kpos serial device not available", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, r.cfg.MaxBackoff)
			continue
		}
		backoff = r.cfg.MinBackoff
		r.log.Info("kpos serial link open")
		reason := r.serve(ctx, port)
		port.Close()
		r.log.Warn("kpos serial link closed", "reason", reason)
	}
}

// serve answers 0025 frames until the port ends or ctx does, and says
// why it stopped. A damaged frame is answered so that KPOS sends it again;
// what cannot be matched to a frame is not answered (see
// SerialRefusals.Code).
func (r *SerialReceiver) serve(ctx context.Context, port io.ReadWriteCloser) string {
	// Closing the port is what ends a Read in progress when ctx ends.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		port.Close()
		close(closed)
	})
	defer func() {
		if !stop() {
			<-closed // the closer started: wait for it, so none outlives Run
		}
	}()
	fr := NewFrameReader(port, 0)
	answer := func(code string) {
		frame := AppendFrame(nil, AppendResponseData(nil, code))
		if _, err := port.Write(frame); err != nil {
			r.log.Warn("kpos serial answer not written", "err", err)
		}
	}
	refuse := func(err error) {
		code, ok := r.cfg.Refusals.Code(err)
		r.log.Warn("kpos serial frame refused", "reason", err.Error(), "answer", code)
		if ok {
			answer(code)
		}
	}
	for {
		data, err := fr.Next()
		if err != nil && ctx.Err() != nil {
			// Stopped: whatever the port says once closed under a Read,
			// and even if its Close did not end the Read but a timeout did.
			return context.Cause(ctx).Error()
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // idle line; a partial frame is kept
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, os.ErrClosed):
			return err.Error()
		default:
			refuse(err)
			continue
		}
		n, err := ParseSerialNotification(data)
		if err != nil {
			refuse(err)
			continue
		}
		code, err := r.h(ctx, n, data)
		if err != nil {
			// Not journaled: no answer, so KPOS sends it again.
			r.log.Error("kpos serial notification not recorded", "mrn", n.MRN, "err", err)
			continue
		}
		r.log.Info("kpos serial notification", "mrn", n.MRN, "result_code", n.ResultCode, "amount_sen", n.AmountSen, "answer", code)
		answer(code)
	}
}
