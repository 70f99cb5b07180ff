package mobypay

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Bounds of what an operator may set. The protocol specifies a 60 s
// window and POS clocks are seen about 1 s apart: under 1 s refuses
// honest terminals, over 10 m widens the replay window for nothing. A
// frame under 1 KiB cannot hold a result; over 1 MiB is memory a board
// should not hand to one peer.
const (
	minWindow     = time.Second
	maxWindow     = 10 * time.Minute
	minFrameLimit = 1 << 10
	maxFrameLimit = 1 << 20
)

// Validate checks the settings an operator writes (the listen address,
// the timestamp window, the longest frame), every problem at once, each
// naming its key as the config file spells it (listen, timestamp_window,
// max_frame) so that the caller needs only to put its section before it.
// Zero is refused although NewServer defaults it: in a config file a 0
// is a mistake, and the defaults are written out in it. The secret and
// the peers are provisioned from elsewhere and not checked here.
func (c ServerConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %v", c.Addr, err))
	}
	if w := c.Window; w < minWindow || w > maxWindow {
		errs = append(errs, fmt.Errorf("timestamp_window %s: want 1s to 10m", w))
	}
	if f := c.MaxFrame; f < minFrameLimit || f > maxFrameLimit {
		errs = append(errs, fmt.Errorf("max_frame %d: want %d to %d", f, minFrameLimit, maxFrameLimit))
	}
	return errors.Join(errs...)
}
