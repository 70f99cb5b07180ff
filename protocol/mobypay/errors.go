package mobypay

import "fmt"

// Every error of this package names it once, at the front:
// "mobypay: malformed envelope: json: unexpected end of input at offset 11".
// Errors wrap errors of the package (a sentinel, a *SyntaxError, the
// timestamp's verdict), and if each layer wrote its cause's Error() the
// prefix would repeat at every layer. So the prefix is not part of an
// error's own text: Error() adds it, detail() leaves it out, and errorf
// writes an error of this package that it wraps by its detail. Callers
// print err.Error() as it is.

const errPrefix = "mobypay: "

// detailer is an error of this package: detail is its text without the
// package prefix.
type detailer interface {
	error
	detail() string
}

// pkgError is the package's own error value. Sentinels are pkgErrors
// without a cause, compared by pointer like errors.New values.
type pkgError struct {
	msg   string // without the prefix
	cause error  // what errors.Is and errors.As look into, or nil
}

func (e *pkgError) Error() string  { return errPrefix + e.msg }
func (e *pkgError) detail() string { return e.msg }
func (e *pkgError) Unwrap() error  { return e.cause }

// newError is errors.New for this package; msg has no prefix.
func newError(msg string) error { return &pkgError{msg: msg} }

// errorf is fmt.Errorf for this package: format has no prefix, and an
// error of this package among args, wrapped with %w or written with %v,
// is written by its detail, so the result names the package once.
// errors.Is and errors.As see every %w argument as fmt.Errorf's would.
func errorf(format string, args ...any) error {
	for i, a := range args {
		if d, ok := a.(detailer); ok {
			args[i] = asCause{d}
		}
	}
	e := fmt.Errorf(format, args...)
	return &pkgError{msg: e.Error(), cause: e}
}

// asCause writes an error of this package inside another one: without
// the prefix, still unwrapping to the error itself.
type asCause struct{ d detailer }

func (c asCause) Error() string { return c.d.detail() }
func (c asCause) Unwrap() error { return c.d }
