package control

import (
	"net/http"
	"strconv"
)

// LogsHandler serves GET /v1/logs?n=N: the last N lines the daemon
// logged (all it keeps when N is missing or 0). last is where they are
// kept; with none (nil) the answer is an empty list, not an error, so
// `kioskd logs` still works against a daemon that keeps no lines.
func LogsHandler(last func(n int) []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		lines := []string{}
		if last != nil {
			lines = append(lines, last(n)...)
		}
		writeJSON(w, http.StatusOK, lines)
	}
}
