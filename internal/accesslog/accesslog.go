// Package accesslog records one line per request, in Apache/nginx Combined Log Format
// or as JSON, to stdout or a file that can be reopened after rotation (SIGUSR1).
// Writes are buffered and flushed at least once a second: a log line per request must
// not cost a write system call per request.
package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record describes one finished request.
type Record struct {
	Time       time.Time // when the request arrived
	Duration   time.Duration
	RemoteAddr string
	Method     string
	URI        string
	Proto      string
	Host       string
	Status     int
	Bytes      int64
	// BodyBytes is the request body bytes the handler read: what arrived,
	// whatever a Content-Length claimed, chunked or not.
	BodyBytes int64
	Referer   string
	UserAgent string
	// User is the name the request was authenticated as (basic auth), "" for none.
	User  string
	Site  string // the site's first host, or "default"
	Route string // the matched route path, "" when none matched
	// Aborted says why a response was cut short after it began ("backend",
	// "timeout", "client", "internal"); "" for a complete one. Bytes is then what
	// was sent.
	Aborted string
	// Request is the request itself, valid only during an observer's call.
	Request *http.Request `json:"-"`
}

// UserRecorder is a response writer that records who its request was
// authenticated as; the server's writer is one.
type UserRecorder interface {
	SetUser(name string)
}

// SetUser records name as the request's user on w, or on the writer w wraps
// (through Unwrap, as http.ResponseController finds it); a no-op when none records.
func SetUser(w http.ResponseWriter, name string) {
	for {
		if r, ok := w.(UserRecorder); ok {
			r.SetUser(name)
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// Logger writes records; the zero value is unusable, use Open.
type Logger struct {
	mu     sync.Mutex
	path   string // "" for stdout
	f      *os.File
	w      *bufio.Writer
	json   bool
	buf    []byte
	stop   chan struct{}
	closed bool
}

// Open starts an access log. dest is "stdout" or a file path; format "combined" or
// "json". It returns nil, nil for dest "off".
func Open(dest, format string) (*Logger, error) {
	if dest == "off" {
		return nil, nil
	}
	l := &Logger{json: format == "json", stop: make(chan struct{})}
	if dest == "stdout" || dest == "" {
		l.f = os.Stdout
	} else {
		l.path = dest
		f, err := openFile(dest)
		if err != nil {
			return nil, err
		}
		l.f = f
	}
	l.w = bufio.NewWriterSize(l.f, 32<<10)
	go l.flusher()
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return f, nil
}

func (l *Logger) flusher() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
		case <-l.stop:
			return
		}
	}
}

// Log writes one record.
func (l *Logger) Log(r *Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.json {
		l.buf = AppendJSON(l.buf[:0], r)
	} else {
		l.buf = AppendCombined(l.buf[:0], r)
	}
	l.buf = append(l.buf, '\n')
	l.w.Write(l.buf)
}

// Reopen closes and reopens the log file, after logrotate moved it away.
func (l *Logger) Reopen() error {
	if l == nil || l.path == "" {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
	old := l.f
	l.f = f
	l.w.Reset(f)
	return old.Close()
}

// Close flushes and closes the log.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.stop)
	err := l.w.Flush()
	if l.path != "" {
		err = l.f.Close()
	}
	return err
}

// AppendCombined formats r in Combined Log Format:
// host - user [time] "request" status bytes "referer" "user-agent", followed for
// an aborted response by one more quoted field, "aborted=REASON": log parsers
// that read the combined fields ignore what follows them.
// Quotes and backslashes in client-supplied fields are escaped with a backslash, and
// control bytes and every byte from 0x7f up as \xHH, as nginx does, so that a request
// can neither forge log lines nor fields, nor put in the log a byte that a terminal
// or a line splitter acts on (NEL, U+2028, a raw CSI); the line is printable ASCII.
func AppendCombined(b []byte, r *Record) []byte {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	b = appendEscaped(b, host)
	b = append(b, " - "...)
	b = appendUser(b, orDash(r.User))
	b = append(b, " ["...)
	b = r.Time.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendEscaped(b, r.Method)
	b = append(b, ' ')
	b = appendEscaped(b, r.URI)
	b = append(b, ' ')
	b = appendEscaped(b, r.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	if r.Bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, r.Bytes, 10)
	}
	b = append(b, " \""...)
	b = appendEscaped(b, orDash(r.Referer))
	b = append(b, "\" \""...)
	b = appendEscaped(b, orDash(r.UserAgent))
	b = append(b, '"')
	if r.Aborted != "" {
		b = append(b, " \"aborted="...)
		b = appendEscaped(b, r.Aborted)
		b = append(b, '"')
	}
	return b
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendUser escapes the user field, which is not quoted: a space in it, which
// an htpasswd name may hold, would shift every field after it.
func appendUser(b []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return appendEscaped(b, s)
		}
		b = append(appendEscaped(b, s[:i]), `\x20`...)
		s = s[i+1:]
	}
}

type jsonRecord struct {
	Time       string  `json:"time"`
	RemoteAddr string  `json:"remote_addr"`
	Method     string  `json:"method"`
	URI        string  `json:"uri"`
	Proto      string  `json:"proto"`
	Host       string  `json:"host"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	DurationMS float64 `json:"duration_ms"`
	Referer    string  `json:"referer,omitempty"`
	UserAgent  string  `json:"user_agent,omitempty"`
	User       string  `json:"user,omitempty"`
	Site       string  `json:"site"`
	Route      string  `json:"route,omitempty"`
	Aborted    string  `json:"aborted,omitempty"`
}

// AppendJSON formats r as one JSON object. encoding/json escapes control bytes,
// U+2028 and U+2029 and makes invalid UTF-8 U+FFFD; DEL and NEL (U+0085), which it
// leaves raw, are escaped too, so that no line splitter or terminal acts on a
// client's bytes. Both can only occur inside strings, where \u escapes are valid.
func AppendJSON(b []byte, r *Record) []byte {
	out, _ := json.Marshal(jsonRecord{
		Time: r.Time.Format(time.RFC3339Nano), RemoteAddr: r.RemoteAddr, Method: r.Method, URI: r.URI,
		Proto: r.Proto, Host: r.Host, Status: r.Status, Bytes: r.Bytes,
		DurationMS: float64(r.Duration.Microseconds()) / 1000, Referer: r.Referer, UserAgent: r.UserAgent,
		User: r.User, Site: r.Site, Route: r.Route, Aborted: r.Aborted,
	})
	if bytes.IndexByte(out, 0x7f) >= 0 {
		out = bytes.ReplaceAll(out, []byte{0x7f}, []byte(`\u007f`))
	}
	if bytes.Contains(out, nel) {
		out = bytes.ReplaceAll(out, nel, []byte(`\u0085`))
	}
	return append(b, out...)
}

// nel is U+0085 in UTF-8.
var nel = []byte("\u0085")

var _ io.Closer = (*Logger)(nil)
