// Package qibixxsim plays a Qibixx MDB board in cashless slave mode with
// a vending machine behind it, on the board's end of a line link (a pty's
// master, or a TCP connection kioskd dialled): it reads the host's
// commands and writes the lines the board would, as Qibixx's public
// examples show them. The test drives the VMC: it chooses a product,
// dispenses, fails, cancels or resets.
//
// Where the pages are silent the simulator picks one plausible
// behaviour and says so: after C,STOP and after a vend's outcome it goes
// back through c,STATUS,IDLE to c,STATUS,ENABLED; a command it does not
// expect in its state it answers with c,ERR.
package qibixxsim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Board is the simulated board and its VMC.
type Board struct {
	rw   io.ReadWriteCloser
	cmds chan string
	done chan struct{}
	err  error // the read side's end, once done is closed

	mu      sync.Mutex
	setconf map[string]string
	on      bool
	vending bool // a vend request waits for C,VEND or C,STOP
}

// ErrTimeout: the host did not send what was waited for in time.
var ErrTimeout = errors.New("qibixxsim: timed out waiting for the host")

// New starts reading the host's commands from rw.
func New(rw io.ReadWriteCloser) *Board {
	b := &Board{rw: rw, cmds: make(chan string, 64), done: make(chan struct{}), setconf: map[string]string{}}
	go b.read()
	return b
}

func (b *Board) read() {
	sc := bufio.NewScanner(b.rw)
	sc.Buffer(make([]byte, 256), 256)
	for sc.Scan() {
		cmd := strings.TrimRight(sc.Text(), "\r")
		if cmd == "" {
			continue
		}
		b.mu.Lock()
		switch {
		case cmd == "C,0":
			b.on = false
		case cmd == "C,1":
			b.on = true
		case strings.HasPrefix(cmd, "C,SETCONF,"):
			k, v, _ := strings.Cut(strings.TrimPrefix(cmd, "C,SETCONF,"), "=")
			b.setconf[k] = v
		}
		b.mu.Unlock()
		select {
		case b.cmds <- cmd:
		default:
			// A host that floods the board loses commands, as a real
			// board's buffer would; the test that waits sees it.
		}
	}
	b.err = sc.Err()
	close(b.done)
}

// Send writes lines as the board does, each ended by CR LF.
func (b *Board) Send(lines ...string) error {
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(l)
		sb.WriteString("\r\n")
	}
	_, err := io.WriteString(b.rw, sb.String())
	return err
}

// SendRaw writes bytes as they are: garbage, overlong lines.
func (b *Board) SendRaw(p []byte) error {
	_, err := b.rw.Write(p)
	return err
}

// Next is the host's next command, within d.
func (b *Board) Next(d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case c := <-b.cmds:
		return c, nil
	case <-b.done:
		select {
		case c := <-b.cmds:
			return c, nil
		default:
		}
		return "", fmt.Errorf("qibixxsim: link closed: %v", b.err)
	case <-t.C:
		return "", ErrTimeout
	}
}

// Expect waits, within d, for the command want, skipping others.
func (b *Board) Expect(want string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := b.Next(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for %q: %w", want, err)
		}
		if c == want {
			return nil
		}
	}
}

// SetConf is the configuration the host has set.
func (b *Board) SetConf() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := make(map[string]string, len(b.setconf))
	for k, v := range b.setconf {
		c[k] = v
	}
	return c
}

// Up waits for the host to switch the slave on (C,1, after its C,0 and
// configuration, each SETCONF answered c,SET,OK), then plays the VMC
// bringing the reader up: inactive, disabled, enabled.
func (b *Board) Up(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := b.Next(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for C,1: %w", err)
		}
		if strings.HasPrefix(c, "C,SETCONF,") {
			if err := b.Send("c,SET,OK"); err != nil {
				return err
			}
		}
		if c == "C,1" {
			break
		}
	}
	return b.Send("c,STATUS,INACTIVE", "r,ACK", "c,STATUS,DISABLED", "r,ACK", "c,STATUS,ENABLED")
}

// Choose is the customer choosing item at price (as the board writes
// it, "1.50"): the VMC's Vend Request. It returns the host's answer,
// C,VEND,<amount> or C,STOP, within d; an approval is ACKed as the
// board ACKs the VMC's next poll.
func (b *Board) Choose(price string, item int, d time.Duration) (string, error) {
	if err := b.Request(price, item); err != nil {
		return "", err
	}
	return b.Answer(d)
}

// Request sends the VMC's Vend Request and does not wait: Answer does.
func (b *Board) Request(price string, item int) error {
	b.mu.Lock()
	b.vending = true
	b.mu.Unlock()
	return b.Send(fmt.Sprintf("c,STATUS,VEND,%s,%d", price, item))
}

// Answer waits for the host's answer to the vend request sent last.
func (b *Board) Answer(d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		c, err := b.Next(time.Until(deadline))
		if err != nil {
			return "", fmt.Errorf("waiting for the vend's answer: %w", err)
		}
		switch {
		case strings.HasPrefix(c, "C,VEND,"):
			b.mu.Lock()
			ok := b.vending
			b.vending = false
			b.mu.Unlock()
			if !ok {
				return c, b.Send("c,ERR,VEND -1")
			}
			return c, b.Send("r,ACK")
		case c == "C,STOP":
			b.mu.Lock()
			b.vending = false
			b.mu.Unlock()
			return c, b.Send("c,STATUS,IDLE", "c,STATUS,ENABLED")
		}
	}
}

// Dispense is the VMC's Vend Success and the session's end.
func (b *Board) Dispense() error {
	return b.Send("c,VEND,SUCCESS", "c,STATUS,IDLE", "c,STATUS,ENABLED")
}

// Fail is the VMC's Vend Failure and the session's end.
func (b *Board) Fail() error { return b.Send("c,ERR,VEND 3", "c,STATUS,IDLE", "c,STATUS,ENABLED") }

// Cancel is the customer pressing cancel on the machine while the vend
// waits for its payment: the session goes back to idle, then ends.
func (b *Board) Cancel() error {
	b.mu.Lock()
	b.vending = false
	b.mu.Unlock()
	return b.Send("c,STATUS,IDLE", "c,STATUS,ENABLED")
}

// Reset is the VMC resetting the reader (or the board's own restart as
// the VMC then sees it): back to inactive, then up again as the VMC
// sets it up and enables it.
func (b *Board) Reset() error {
	b.mu.Lock()
	b.vending = false
	b.mu.Unlock()
	return b.Send("c,STATUS,INACTIVE", "c,STATUS,DISABLED", "c,STATUS,ENABLED")
}

// Close ends the link from the board's side: a cable pulled.
func (b *Board) Close() error {
	err := b.rw.Close()
	<-b.done
	return err
}
