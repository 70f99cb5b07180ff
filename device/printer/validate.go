package printer

import (
	"errors"
	"fmt"
)

// Widths an operator may configure. Check takes 16 to 80, what the
// encoder can lay out; receipt printers are 58 mm (24 to 32 columns) or
// 80 mm (42 to 64 with the small font), so a width outside 24 to 64 is a
// typo that would print every receipt wrapped or truncated.
const (
	MinWidth = 24
	MaxWidth = 64
)

// Validate checks a layout as an operator sets it, every problem at once,
// each naming its key as the config file spells it (width, code_page) so
// that the caller needs only to put its section before it. It is stricter
// than Check, which New runs.
func (l Layout) Validate() error {
	var errs []error
	if l.Width < MinWidth || l.Width > MaxWidth {
		errs = append(errs, fmt.Errorf("width %d: want %d to %d", l.Width, MinWidth, MaxWidth))
	}
	if !l.CodePage.Valid() {
		errs = append(errs, fmt.Errorf("code_page %v: unknown", l.CodePage))
	}
	return errors.Join(errs...)
}
