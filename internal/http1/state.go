package http1

import (
	"net/http"
	"net/url"
	"sync"
)

// The strings a request state keeps for reuse: enough for the headers a few
// kinds of client repeat, bounded because the state passes from connection to
// connection.
const (
	internMax      = 256
	internMaxBytes = 16 << 10
)

// reqState is what a connection needs only while it reads and answers a request:
// the read buffer, the parsed head, the Request with its URL and Header, the
// ResponseWriter and the client watch. Connections take one from a pool when a
// request's first bytes are read and give it back when they wait for the next
// with nothing buffered, so a keep-alive connection between requests holds
// none of it. Its Request, URL, Header and ResponseWriter are reused by every
// request, so a request costs no allocation once the strings it carries have
// been seen.
type reqState struct {
	c           *conn
	ctx         *connContext // the connection context req carries
	buf         []byte
	head        head
	req         http.Request
	url         url.URL
	hdr         http.Header
	vals        [maxFields]string
	rw          ResponseWriter
	intern      map[string]string
	internBytes int
	watch       watch
}

var reqStates = sync.Pool{New: func() any {
	st := &reqState{buf: make([]byte, bufSize), hdr: make(http.Header, 16), intern: map[string]string{}}
	st.rw.hdr = make(http.Header, 16)
	return st
}}

// acquire gives c a request state.
func (c *conn) acquire() {
	st := reqStates.Get().(*reqState)
	st.c, st.rw.c = c, c
	if ctx := (*connContext)(c); st.ctx != ctx {
		st.req = *st.req.WithContext(ctx)
		st.ctx = ctx
	}
	st.req.RemoteAddr = c.remote
	st.req.TLS = c.cs
	c.st = st
}

// release gives c's request state back; nothing of it may be in use.
func (c *conn) release() {
	st := c.st
	c.st = nil
	st.c, st.rw.c = nil, nil
	reqStates.Put(st)
}

// str returns b as a string, the same string as last time for bytes seen before
// (a bounded set, started afresh when full), so a keep-alive client repeating
// its headers costs no allocation.
func (st *reqState) str(b []byte) string {
	if s, ok := st.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(s) > internMaxBytes {
		return s
	}
	if st.internBytes+len(s) > internMaxBytes || len(st.intern) >= internMax {
		clear(st.intern)
		st.internBytes = 0
	}
	st.intern[s] = s
	st.internBytes += len(s)
	return s
}
