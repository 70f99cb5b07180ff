package mdb_test

import (
	"errors"
	"os"
)

// errNotExistOrUnsupported is the error a missing tty must match: not
// found on Linux, unsupported where ttys are not.
func errNotExistOrUnsupported(err error) error {
	if errors.Is(err, errors.ErrUnsupported) {
		return errors.ErrUnsupported
	}
	return os.ErrNotExist
}
