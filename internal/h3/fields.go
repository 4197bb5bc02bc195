package h3

import "net/http"

// connectionFields are the header fields that are about an HTTP/1.1 connection:
// an HTTP/3 message carrying one is malformed (RFC 9114 §4.2), and quic-go's
// client and browsers reject the whole response. quic-go's server sends what the
// handler set, and gantry's handlers set "Connection: close" on the answers that
// end an HTTP/1.1 connection (a 413 or 503 for a body it will not read).
var connectionFields = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"}

// stripConnectionFields removes connectionFields from every response of h, as
// net/http's HTTP/2 server does.
func stripConnectionFields(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&fieldWriter{ResponseWriter: w}, r)
	})
}

type fieldWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *fieldWriter) strip() {
	h := w.ResponseWriter.Header()
	for _, k := range connectionFields {
		delete(h, k)
	}
}

func (w *fieldWriter) WriteHeader(code int) {
	w.strip()
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *fieldWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.strip()
		w.wrote = true
	}
	return w.ResponseWriter.Write(p)
}

func (w *fieldWriter) Flush() {
	if !w.wrote {
		w.strip()
		w.wrote = true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach quic-go's writer (read deadlines).
func (w *fieldWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
