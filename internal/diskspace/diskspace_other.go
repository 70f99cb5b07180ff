//go:build !unix

package diskspace

import (
	"errors"
	"fmt"
)

// Of says it cannot tell: the firmware runs on Linux; other builds are
// development tools, and a free-space warning that never fires is the
// honest answer there.
func Of(path string) (Usage, error) {
	return Usage{}, fmt.Errorf("diskspace: %s: %w", path, errors.ErrUnsupported)
}
