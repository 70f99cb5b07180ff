package payment

import "time"

// rateLog bounds the log lines of one repeated event: the first goes out
// at once, then at most one per period, which carries how many were held
// back since the last. A flood of one kind of message then costs a few
// lines instead of one each (the console is a 115200-baud serial line).
// It is used from the service loop only.
type rateLog struct {
	period time.Duration
	next   time.Time
	held   int
}

// allow reports whether to log now and how many were held back before.
func (r *rateLog) allow(now time.Time) (bool, int) {
	if now.Before(r.next) {
		r.held++
		return false, 0
	}
	n := r.held
	r.held, r.next = 0, now.Add(r.period)
	return true, n
}
