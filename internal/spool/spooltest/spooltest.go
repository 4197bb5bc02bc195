// Package spooltest gives a gateway's own tests what gantry's server does to a
// request body before the gateway sees it: spooled in full (internal/spool), or
// streamed as it arrives when the route has request_buffering = false.
package spooltest

import (
	"net/http"
	"testing"

	"gantry/internal/spool"
)

// Wrap returns a middleware that spools bodies of at most limit bytes into a
// spooler of the test's own, except for requests stream reports true for, whose
// bodies are handed on as they arrive (still limited).
func Wrap(t testing.TB, limit int64, stream func(*http.Request) bool) func(http.Handler) http.Handler {
	t.Helper()
	sp, err := spool.New(t.TempDir(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stream(r) {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
				h.ServeHTTP(w, r)
				return
			}
			b, err := sp.Request(w, r, limit)
			if err != nil {
				http.Error(w, err.Error(), spool.Status(err))
				return
			}
			defer b.Close()
			h.ServeHTTP(w, r)
		})
	}
}
