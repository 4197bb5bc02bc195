package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gantry/internal/http1"
)

// refuse answers the request that the framing guard (internal/http1) put in place
// of a head it refused, and logs and records the refused head itself: a request
// smuggling attempt is exactly what the access log and the telescope should see.
// No route runs, and the connection closes.
func (s *Server) refuse(start time.Time, w http.ResponseWriter, r *http.Request, ref *http1.Refusal) {
	// The rate is the client's to choose: info, not an error.
	s.log.Info("request refused before routing", "cause", ref.Cause, "status", ref.Status,
		"remote", r.RemoteAddr, "method", ref.Method, "target", ref.Target, "proto", ref.Proto)
	rw := &responseWriter{ResponseWriter: w}
	w.Header()["Server"] = serverHeader
	w.Header().Set("Connection", "close")
	http.Error(rw, fmt.Sprintf("%d %s: %s", ref.Status, strings.ToLower(http.StatusText(ref.Status)), ref.Cause), ref.Status)
	path, _, _ := strings.Cut(ref.Target, "?")
	orig := &http.Request{
		Method: ref.Method, RequestURI: ref.Target, Proto: ref.Proto, Host: ref.Host,
		URL: &url.URL{Path: path}, Header: ref.Header, RemoteAddr: r.RemoteAddr,
	}
	s.record(start, orig.WithContext(r.Context()), rw.outcome, nil, nil)
}
