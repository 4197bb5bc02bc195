package h2

import (
	"context"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// onRequestHeaders acts on a decoded header block: a new request, or the
// trailers of an open one.
func (c *conn) onRequestHeaders(id uint32, end bool) error {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	if st != nil {
		return c.onTrailers(st, end)
	}
	if id <= c.maxStreamID {
		return connError{errProtocol, "HEADERS on a closed stream"}
	}
	c.mu.Lock()
	c.maxStreamID = id
	away, open, running := c.goingAway, len(c.streams), c.running
	c.mu.Unlock()
	switch {
	case away:
		return nil // after our GOAWAY: the client retries elsewhere
	case running >= 2*maxConcurrentStreams:
		return connError{errEnhanceYourCalm, "too many handlers still running"}
	case open >= maxConcurrentStreams:
		c.resetStream(id, errRefusedStream)
		return nil
	}
	st = &stream{c: c, id: id, declared: -1, recvWindow: streamWindow}
	if c.fieldsErr {
		c.addStream(st, end)
		w := newResponseWriter(st, nil, true)
		w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		w.finish()
		c.handlerDone(st)
		return nil
	}
	r, ok := c.newRequest(st, end)
	if !ok {
		c.resetStream(id, errProtocol)
		return nil
	}
	c.addStream(st, end)
	w := newResponseWriter(st, r, true)
	if c.s.Inline != nil && end && c.inlineRoom() {
		if served, panicked := c.serveInline(w, r); served {
			if !panicked {
				w.finish()
			}
			c.handlerDone(st)
			return nil
		}
	}
	w.inline = false
	clear(w.hdr)
	ctx, cancel := context.WithCancel(c.base)
	r = r.WithContext(ctx)
	w.r = r
	c.mu.Lock()
	st.cancel = cancel
	if st.reset {
		cancel()
	} else if d := c.s.ReadTimeout; d > 0 && !st.remoteDone {
		st.readTimer = time.AfterFunc(d, func() { c.readTimedOut(st) })
	}
	c.mu.Unlock()
	workers.run(func() { c.runHandler(w, r) })
	return nil
}

// serveInline runs Server.Inline on the reader goroutine. A panic there would
// end the process: it resets the stream instead, as a handler's does.
func (c *conn) serveInline(w *responseWriter, r *http.Request) (served, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler && c.s.Logger != nil {
				c.s.Logger.Error("h2: panic answering a request inline", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
			c.resetStream(w.st.id, errInternal)
			w.done = true
			served, panicked = true, true
		}
	}()
	return c.s.Inline(w, r), false
}

// inlineRoom reports whether the inline answers waiting for window leave room
// for another: past maxPendingInline, requests go to handlers, which wait for
// window without holding a copy of their answer.
func (c *conn) inlineRoom() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, st := range c.pendingStreams {
		n += len(st.pending)
	}
	return n < maxPendingInline
}

func (c *conn) addStream(st *stream, end bool) {
	c.mu.Lock()
	st.sendWindow = c.peerWindow
	st.remoteDone = end
	c.streams[st.id] = st
	c.running++
	c.mu.Unlock()
}

// handlerDone is called when a stream's handler has returned.
func (c *conn) handlerDone(st *stream) {
	c.mu.Lock()
	c.running--
	c.mu.Unlock()
	c.closeIfDone()
	c.setIdleDeadline(false)
}

func (c *conn) runHandler(w *responseWriter, r *http.Request) {
	st := w.st
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler && c.s.Logger != nil {
				c.s.Logger.Error("h2: panic serving a request", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
			c.resetStream(st.id, errInternal)
		} else {
			w.finish()
		}
		if st.body != nil {
			st.body.Close()
		}
		c.mu.Lock()
		st.cancel()
		c.mu.Unlock()
		c.flushFromHandler()
		c.handlerDone(st)
	}()
	c.s.Handler.ServeHTTP(w, r)
}

// onTrailers takes the trailers of a request body.
func (c *conn) onTrailers(st *stream, end bool) error {
	if st.remoteDone {
		c.resetStream(st.id, errStreamClosed)
		return nil
	}
	if !end {
		return connError{errProtocol, "trailers without END_STREAM"}
	}
	if c.fieldsErr {
		c.resetStream(st.id, errProtocol)
		return nil
	}
	if st.declared >= 0 && st.received != st.declared {
		c.resetStream(st.id, errProtocol)
		return nil
	}
	var tr http.Header
	for _, f := range c.fields {
		if f.Name == "" || f.Name[0] == ':' || !validFieldName(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
			c.resetStream(st.id, errProtocol)
			return nil
		}
		if tr == nil {
			tr = http.Header{}
		}
		k := http.CanonicalHeaderKey(f.Name)
		tr[k] = append(tr[k], f.Value)
	}
	c.mu.Lock()
	if st.body != nil && st.body.trailer != nil {
		for k, v := range tr {
			if _, declared := st.body.trailer[k]; declared {
				st.body.trailer[k] = v
			}
		}
	}
	c.mu.Unlock()
	c.remoteEnded(st)
	return nil
}

// validFieldName reports whether a field name is a lowercase token, as HTTP/2
// requires.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'A' <= b && b <= 'Z' || !httpguts.IsTokenRune(rune(b)) {
			return false
		}
	}
	return true
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// validTarget reports whether a request target has no space, control byte or
// DEL, which HTTP/1.1's request line could not carry.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

const (
	pseudoMethod = 1 << iota
	pseudoScheme
	pseudoPath
	pseudoAuthority
)

// newRequest builds the request of a header block, or reports it malformed
// (RFC 9113 §8.1.1: a stream error).
func (c *conn) newRequest(st *stream, end bool) (*http.Request, bool) {
	var method, scheme, path, authority string
	var seen int
	regular := false
	hdr := make(http.Header, len(c.fields))
	var cookies []string
	for _, f := range c.fields {
		if strings.HasPrefix(f.Name, ":") {
			if regular {
				return nil, false
			}
			var bit int
			switch f.Name {
			case ":method":
				bit, method = pseudoMethod, f.Value
			case ":scheme":
				bit, scheme = pseudoScheme, f.Value
			case ":path":
				bit, path = pseudoPath, f.Value
			case ":authority":
				bit, authority = pseudoAuthority, f.Value
			default:
				return nil, false
			}
			if seen&bit != 0 {
				return nil, false
			}
			seen |= bit
			continue
		}
		regular = true
		if !validFieldName(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
			return nil, false
		}
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, false
		case "te":
			if f.Value != "trailers" {
				return nil, false
			}
		case "cookie":
			cookies = append(cookies, f.Value)
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		hdr[k] = append(hdr[k], f.Value)
	}
	if len(cookies) > 0 {
		hdr["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	// The 100 is this server's to send (on the handler's first read), as
	// net/http's does: a gateway handing Expect on would have its backend
	// wait for a body it already has, or answer 417.
	needContinue := httpguts.HeaderValuesContainsToken(hdr["Expect"], "100-continue")
	if needContinue {
		delete(hdr, "Expect")
	}
	// A method, scheme or path a gateway or proxy would copy into a request
	// line or an environment must be what HTTP/1.1 could carry: a token, http
	// or https, a target without spaces or control bytes.
	if !validToken(method) || !httpguts.ValidHostHeader(authority) || seen&pseudoScheme != 0 && scheme != "http" && scheme != "https" || !validTarget(path) {
		return nil, false
	}
	r := &http.Request{Method: method, Proto: "HTTP/2.0", ProtoMajor: 2, Header: hdr,
		RemoteAddr: c.remote, TLS: &c.cs, RequestURI: path, Host: authority}
	if method == http.MethodConnect {
		if seen&(pseudoScheme|pseudoPath) != 0 || authority == "" {
			return nil, false
		}
		r.URL = &url.URL{Host: authority}
		r.RequestURI = authority
	} else {
		if scheme == "" || path == "" {
			return nil, false
		}
		if method == http.MethodOptions && path == "*" {
			r.URL = &url.URL{Path: "*"}
		} else {
			u, err := url.ParseRequestURI(path)
			if err != nil || path[0] != '/' {
				return nil, false
			}
			r.URL = u
		}
	}
	if r.Host == "" {
		// Held to HTTP/1.1's rules: gateways hand it on as HTTP_HOST.
		if h := hdr["Host"]; len(h) > 1 || len(h) == 1 && !httpguts.ValidHostHeader(h[0]) {
			return nil, false
		}
		r.Host = hdr.Get("Host")
	}
	if cl := hdr["Content-Length"]; len(cl) > 0 {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return nil, false
			}
		}
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return nil, false
		}
		st.declared = int64(n)
		if end && n != 0 {
			return nil, false
		}
	}
	if end {
		r.Body = http.NoBody
		return r, true
	}
	r.ContentLength = st.declared
	b := newBody(c, st)
	b.needContinue.Store(needContinue)
	if tr := hdr["Trailer"]; len(tr) > 0 {
		delete(hdr, "Trailer")
		r.Trailer = http.Header{}
		for _, v := range tr {
			for _, k := range strings.Split(v, ",") {
				switch k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k {
				case "", "Content-Length", "Transfer-Encoding", "Trailer":
					// Framing, never a trailer (RFC 9110 §6.5.1): a
					// proxy would send it on to its backend.
				default:
					r.Trailer[k] = nil
				}
			}
		}
		b.trailer = r.Trailer
	}
	st.body = b
	r.Body = b
	return r, true
}
