package h3

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// errCodeNoError is HTTP/3's H3_NO_ERROR (RFC 9114 §8.1), the code a connection
// closed for being idle is closed with.
const errCodeNoError = 0x100

// watch closes a connection that holds no request in its handler for too long:
// readHeader after the handshake, idle after its last request ended. quic-go
// reads a request's HEADERS frame with no deadline and its idle timer stops while
// a stream is open, so a client that sends half a HEADERS frame and keeps the
// connection alive with pings would otherwise hold it (and a goroutine) for ever;
// this is the HTTP/3 counterpart of net/http's ReadHeaderTimeout and IdleTimeout.
type watch struct {
	conn   *quic.Conn
	idle   time.Duration
	mu     sync.Mutex
	active int // requests in the handler
	timer  *time.Timer
}

type watchKey struct{}

// watchConn starts watching conn; the watch ends with the connection.
func watchConn(ctx context.Context, conn *quic.Conn, readHeader, idle time.Duration) context.Context {
	w := &watch{conn: conn, idle: idle}
	w.timer = time.AfterFunc(readHeader, w.expire)
	go func() {
		<-conn.Context().Done()
		w.timer.Stop()
	}()
	return context.WithValue(ctx, watchKey{}, w)
}

func (w *watch) expire() {
	w.mu.Lock()
	idle := w.active == 0
	w.mu.Unlock()
	if idle {
		w.conn.CloseWithError(errCodeNoError, "no request in time")
	}
}

func (w *watch) begin() {
	w.mu.Lock()
	w.active++
	w.timer.Stop()
	w.mu.Unlock()
}

func (w *watch) end() {
	w.mu.Lock()
	if w.active--; w.active == 0 {
		w.timer.Reset(w.idle)
	}
	w.mu.Unlock()
}

// watched counts the requests of h in their connection's watch.
func watched(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w, ok := r.Context().Value(watchKey{}).(*watch); ok {
			w.begin()
			defer w.end()
		}
		h.ServeHTTP(rw, r)
	})
}
