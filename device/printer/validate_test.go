package printer

import (
	"strings"
	"testing"

	"github.com/kioskd/kioskd/protocol/escpos"
)

func TestLayoutValidate(t *testing.T) {
	for _, c := range []struct {
		l    Layout
		want string // "" for valid
	}{
		{Layout{Width: 24, CodePage: escpos.CP437}, ""},
		{Layout{Width: 32, CodePage: escpos.CP858}, ""},
		{Layout{Width: 64, CodePage: escpos.CP1252}, ""},
		{Layout{Width: 23, CodePage: escpos.CP437}, "width 23: want 24 to 64"},
		{Layout{Width: 65, CodePage: escpos.CP437}, "width 65: want 24 to 64"},
		{Layout{Width: 0, CodePage: escpos.CP437}, "width 0: want 24 to 64"},
		{Layout{Width: 32, CodePage: 9}, "code_page "},
	} {
		err := c.l.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.l, err, c.want)
		}
	}
	// Every problem at once.
	if err := (Layout{Width: 10, CodePage: 9}).Validate(); err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("two problems: %v", err)
	}
}
