// Package abort is how a gateway tells the server that a response it started was
// cut short, and why. The server then logs the request with what was sent and the
// reason, counts it, and closes the connection, so that a cut response never looks
// complete to the client.
package abort

import "net/http"

// Reason says why a response was cut short; it is the access log's marker.
type Reason string

const (
	// Backend: the backend died, broke its protocol, or sent less than it declared.
	Backend Reason = "backend"
	// Timeout: the backend was silent past the route's timeout.
	Timeout Reason = "timeout"
	// Client: the client went away.
	Client Reason = "client"
	// Internal: gantry itself failed (a handler panic).
	Internal Reason = "internal"
)

// Recorder is a response writer that records why its response was aborted; the
// server's writer is one. The first reason recorded wins.
type Recorder interface {
	SetAborted(Reason)
}

// Mark records why on w, or on the writer w wraps (through Unwrap, as
// http.ResponseController finds it). It is a no-op when none records.
func Mark(w http.ResponseWriter, why Reason) {
	for {
		if r, ok := w.(Recorder); ok {
			r.SetAborted(why)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// Response ends a handler whose response header was sent but whose body cannot be
// completed: it marks the response, sends what was written so far (unless the
// client is gone), and panics with http.ErrAbortHandler, on which net/http and the
// fast path close the connection (an HTTP/2 stream is reset) without completing the
// response. It does not return.
func Response(w http.ResponseWriter, why Reason) {
	Mark(w, why)
	if why != Client {
		http.NewResponseController(w).Flush()
	}
	panic(http.ErrAbortHandler)
}
