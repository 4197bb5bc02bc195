package h3

import (
	"net/http"
	"strconv"
)

// AltSvcMaxAge is how long a client may remember that HTTP/3 is on offer.
const AltSvcMaxAge = 86400

// AltSvc returns next with `Alt-Svc: h3=":port"; ma=86400` on every response to
// a TLS request over HTTP/1.1 or HTTP/2, which is how a browser learns that it
// may switch to HTTP/3 on that UDP port. Plain-HTTP responses do not get it: a
// client may only use an alternative for the origin it was announced by, and
// HTTP/3 is always https.
func AltSvc(port int, next http.Handler) http.Handler {
	// Shared by every response: its capacity is its length, so a handler that
	// adds a value gets a copy.
	v := []string{AltSvcValue(port)}[:1:1]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && r.ProtoMajor < 3 {
			w.Header()["Alt-Svc"] = v
		}
		next.ServeHTTP(w, r)
	})
}

// AltSvcValue is the Alt-Svc header value announcing HTTP/3 on port.
func AltSvcValue(port int) string {
	return `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(AltSvcMaxAge)
}
