package http1

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// The framing guard sits between a connection and net/http. It follows the
// HTTP/1 message framing of the byte stream exactly as net/http will read it
// (RFC 9112: head, then a body by Content-Length or chunked coding, then the next
// head) and is strictly stricter than net/http: where net/http's reading of the
// framing could differ from its own (Transfer-Encoding on HTTP/1.0, which Go
// ignores; Content-Length with Transfer-Encoding; a bare LF; obs-fold; odd chunk
// lines...) it refuses the request instead of guessing, so the two can never
// disagree on where a request ends, which would itself be a smuggling vector.
//
// A refused head never reaches net/http. In its place the guard hands over a
// synthetic request carrying a per-connection nonce, then EOF; the server's
// handler recognises it with Refused, answers the status with Connection: close
// and logs the original request. The guard never writes to the socket itself: a
// response to an earlier pipelined request may be on its way.

type guardState uint8

const (
	gHead      guardState = iota // reading a request head
	gBody                        // remain bytes of a Content-Length body
	gChunkSize                   // a chunk-size line
	gChunkData                   // remain bytes of chunk data
	gChunkEnd                    // the CRLF after chunk data
	gTrailer                     // trailer fields up to the empty line
	gHold                        // a request ended: later bytes wait until net/http is done with it
	gPass                        // hijacked (an upgrade): raw bytes
)

// Limits of the guard beyond net/http's own.
const (
	guardInitBuf  = 4 << 10
	maxChunkLine  = 1 << 10 // net/http allows 4KB; real ones are a few bytes
	maxSizeDigits = 15      // hex digits of a chunk size: below 1<<60, no overflow
	maxCLDigits   = 18      // decimal digits of a Content-Length: fits an int64
	lingerTime    = 500 * time.Millisecond
	lingerBytes   = 256 << 10
)

// Guard is a connection whose reads pass through the framing guard. It is made by
// the fast path's handoff and by ServeGuarded; net/http sees it as the
// connection (its ConnState and ConnContext hooks find it there).
type Guard struct {
	net.Conn
	maxHead int // a longer head is refused with 431
	bufMax  int
	buf     []byte
	r, a, w int // buf[r:a] is approved for net/http, buf[a:w] not examined yet
	scan    int // head: offset from a of the first line not examined yet
	// hdrTimeout bounds the time from a head's first byte to its end (net/http's
	// ReadHeaderTimeout): net/http cannot apply it to a later request on the
	// connection, since it sees no byte of a head until the guard approves it
	// whole. hdrArmed says the deadline is set for the head being read.
	hdrTimeout time.Duration
	hdrArmed   bool
	skipped    bool // the head's one leading empty line was dropped (RFC 9112 §2.2)
	st         guardState
	remain     int64
	out        []byte // the synthetic request, once a head is refused
	err        error  // once set, every later read returns it
	log        *slog.Logger

	refusal *Refusal
	nonce   string
	linger  atomic.Bool // refused or failed: Close drains first
}

// Refusal describes a request head the guard refused. Its strings come from the
// client: bounded, with control and non-ASCII bytes escaped.
type Refusal struct {
	Status                      int    // 400, 431, 501 or 505
	Cause                       string // what was wrong, for the log
	Method, Target, Proto, Host string
	Header                      http.Header // the head's fields, bounded
}

// refusedField names the synthetic request's marker; its value is the
// connection's nonce, which a client cannot know.
const refusedField = "X-Gantry-Refused"

func newGuard(c net.Conn, maxHeaderBytes int, headerTimeout time.Duration, log *slog.Logger) *Guard {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	// net/http reads up to MaxHeaderBytes+4096 before it answers 431.
	maxHead := maxHeaderBytes + 4096
	return &Guard{Conn: c, maxHead: maxHead, bufMax: maxHead + 4096, buf: make([]byte, guardInitBuf), hdrTimeout: headerTimeout, log: log}
}

// Read gives net/http the bytes of the connection that the guard has approved.
func (g *Guard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if g.r < g.a {
			n := copy(p, g.buf[g.r:g.a])
			g.r += n
			return n, nil
		}
		if len(g.out) > 0 {
			n := copy(p, g.out)
			g.out = g.out[n:]
			return n, nil
		}
		if g.err != nil {
			return 0, g.err
		}
		switch g.st {
		case gPass:
			if g.w > g.a {
				g.a = g.w
				continue
			}
			return g.Conn.Read(p)
		case gBody, gChunkData:
			if g.w > g.a {
				k := int(min(g.remain, int64(g.w-g.a)))
				g.a += k
				g.remain -= int64(k)
				g.dataDone()
				continue
			}
			// Nothing buffered: the data goes straight into p.
			g.r, g.a, g.w = 0, 0, 0
			n, err := g.Conn.Read(p[:min(int64(len(p)), g.remain)])
			g.remain -= int64(n)
			g.dataDone()
			return n, err
		case gHold:
			// Only net/http's background read (which watches for the client
			// leaving) reads here. Bytes after the request may not be HTTP at
			// all if the handler hijacks the connection, so they are kept
			// unexamined until ConnState says which.
			if g.w > g.a || g.w == g.bufMax {
				return 0, nil
			}
			n, err := g.fill()
			if n > 0 {
				return 0, nil
			}
			return 0, err
		default:
			if g.st == gHead && g.w > g.a && !g.hdrArmed && g.hdrTimeout > 0 {
				g.hdrArmed = true
				g.Conn.SetReadDeadline(time.Now().Add(g.hdrTimeout))
			}
			if g.step() {
				continue
			}
			n, err := g.fill()
			if n > 0 || err == nil {
				continue
			}
			if errors.Is(err, io.EOF) && g.st == gHead && g.w > g.a {
				g.refuse(http.StatusBadRequest, "incomplete request head", g.buf[g.a:g.w])
				continue
			}
			return 0, err
		}
	}
}

// dataDone moves on once a body or chunk's data is all approved.
func (g *Guard) dataDone() {
	if g.remain > 0 {
		return
	}
	if g.st == gBody {
		g.st = gHold
	} else {
		g.st = gChunkEnd
	}
}

// fill reads more of the connection into buf[w:], growing buf up to bufMax.
func (g *Guard) fill() (int, error) {
	if g.r > 0 {
		copy(g.buf, g.buf[g.r:g.w])
		g.a -= g.r
		g.w -= g.r
		g.r = 0
	}
	if g.w == len(g.buf) {
		if len(g.buf) >= g.bufMax {
			return 0, errors.New("http1: guard buffer full") // unreachable: step refuses first
		}
		nb := make([]byte, min(2*len(g.buf), g.bufMax))
		copy(nb, g.buf[:g.w])
		g.buf = nb
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	return n, err
}

// step examines buf[a:w] in the states that need whole lines, approving what is
// valid; it reports whether it made progress (a refusal is progress).
func (g *Guard) step() bool {
	b := g.buf[g.a:g.w]
	switch g.st {
	case gHead:
		return g.stepHead(b)
	case gChunkSize:
		line, more := g.crlfLine(b, maxChunkLine, "chunk-size line")
		if more {
			return false
		}
		if line == nil {
			return true
		}
		size, ok := chunkSize(line[:len(line)-2])
		if !ok {
			g.fail("malformed chunk-size line")
			return true
		}
		g.a += len(line)
		if size == 0 {
			g.st, g.scan = gTrailer, 0
		} else {
			g.st, g.remain = gChunkData, size
		}
		return true
	case gChunkEnd:
		if len(b) == 0 {
			return false
		}
		if b[0] != '\r' || len(b) > 1 && b[1] != '\n' {
			g.fail("chunk data not followed by CRLF")
			return true
		}
		if len(b) < 2 {
			return false
		}
		g.a += 2
		g.st = gChunkSize
		return true
	case gTrailer:
		line, more := g.crlfLine(b, g.maxHead-g.scan, "trailer section")
		if more {
			return false
		}
		if line == nil {
			return true
		}
		if len(line) > 2 {
			if _, _, ok := fieldLine(line[:len(line)-2]); !ok {
				g.fail("malformed trailer field")
				return true
			}
			if name := line[:bytes.IndexByte(line, ':')]; eqFold(name, "content-length") || eqFold(name, "transfer-encoding") || eqFold(name, "host") {
				g.fail("framing field in trailer section")
				return true
			}
		}
		g.a += len(line)
		g.scan += len(line)
		if len(line) == 2 {
			// The blank line ends the message; the next head is scanned from its
			// own start.
			g.st, g.scan = gHold, 0
		}
		return true
	}
	return false
}

// crlfLine returns the line (with its CRLF) at the start of b, or more when it is
// not complete yet; a line that is too long or does not end in exactly one CRLF
// fails the body, and crlfLine returns neither.
func (g *Guard) crlfLine(b []byte, max int, what string) (line []byte, more bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > max {
			g.fail(what + " too long")
			return nil, false
		}
		return nil, true
	}
	if i > max {
		g.fail(what + " too long")
		return nil, false
	}
	if i == 0 || b[i-1] != '\r' {
		g.fail("bare LF in " + what)
		return nil, false
	}
	for _, c := range b[:i-1] {
		if c == '\r' {
			g.fail("bare CR in " + what)
			return nil, false
		}
	}
	return b[:i+1], false
}

// chunkSize parses chunk-size [ chunk-ext ]: hex digits right before the CRLF or
// a ';', and extensions of visible characters, spaces and tabs only.
func chunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i == maxSizeDigits {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, false
	}
	if i < len(line) {
		if line[i] != ';' {
			return 0, false
		}
		for _, c := range line[i+1:] {
			if (c < 0x20 && c != '\t') || c >= 0x7f {
				return 0, false
			}
		}
	}
	return n, true
}

// fail ends the body being read. net/http is handed, in place of the bad bytes,
// bytes its own chunked reader refuses (an invalid size, data not followed by
// CRLF, a trailer line without a colon), so that the body fails as a malformed
// one does in net/http (a read error from the connection would instead look like
// the client leaving); then the connection's input ends, and nothing after the
// bad framing is ever read as a request.
func (g *Guard) fail(cause string) {
	switch g.st {
	case gChunkSize:
		g.out = []byte("x\r\n")
	case gChunkEnd:
		g.out = []byte("xx")
	default:
		g.out = []byte("\x00\r\n\r\n")
	}
	g.err = fmt.Errorf("http1: request body refused: %s", cause)
	g.linger.Store(true)
	g.w = g.a
	if g.log != nil {
		g.log.Info("http1: request body refused", "cause", cause, "remote", g.RemoteAddr().String())
	}
}

// stepHead looks for the end of the head in b (which starts at the head) and
// approves or refuses it once complete.
func (g *Guard) stepHead(b []byte) bool {
	for {
		i := bytes.IndexByte(b[g.scan:], '\n')
		if i < 0 {
			if len(b) > g.maxHead {
				g.refuse(http.StatusRequestHeaderFieldsTooLarge, "request head too large", b)
				return true
			}
			return false
		}
		end := g.scan + i
		if end > g.maxHead {
			g.refuse(http.StatusRequestHeaderFieldsTooLarge, "request head too large", b)
			return true
		}
		if end == 0 || b[end-1] != '\r' {
			// net/http would take a bare LF as a line end, a proxy in front
			// perhaps not: the two would see different fields.
			g.refuse(http.StatusBadRequest, "bare LF in request head", b)
			return true
		}
		if end-1 == g.scan {
			if g.scan == 0 && !g.skipped {
				// One empty line before a request line is ignored, as RFC 9112
				// §2.2 asks (old clients send a CRLF after a POST body); it is
				// dropped here, so net/http never sees it either.
				copy(g.buf[g.a:], g.buf[g.a+2:g.w])
				g.w -= 2
				g.skipped = true
				return true
			}
			if g.scan == 0 {
				g.refuse(http.StatusBadRequest, "empty request line", b)
				return true
			}
			h := b[:end+1]
			var f framing
			if status, cause := f.check(h); status != 0 {
				g.refuse(status, cause, h)
				return true
			}
			g.a += len(h)
			g.scan = 0
			g.hdrArmed, g.skipped = false, false
			switch {
			case f.chunked:
				g.st = gChunkSize
			case f.length > 0:
				g.st, g.remain = gBody, f.length
			default:
				g.st = gHold
			}
			return true
		}
		g.scan = end + 1
	}
}

// refuse replaces the head in b (complete or not) with the synthetic request and
// ends the connection's input after it.
func (g *Guard) refuse(status int, cause string, b []byte) {
	g.refusal = describe(b)
	g.refusal.Status, g.refusal.Cause = status, cause
	g.nonce = rand.Text()
	g.out = []byte("GET / HTTP/1.1\r\nHost: refused.invalid\r\n" + refusedField + ": " + g.nonce + "\r\nConnection: close\r\n\r\n")
	g.err = io.EOF
	g.linger.Store(true)
	g.w = g.a
	g.scan = 0
}

// ConnState follows net/http's view of the connection: once it is idle the bytes
// after the last request are the next head; once hijacked they are not HTTP.
func (g *Guard) connState(st http.ConnState) {
	switch st {
	case http.StateIdle:
		if g.st == gHold {
			g.st = gHead
		}
	case http.StateHijacked:
		g.st = gPass
	}
}

// Close closes the connection. After a refusal the client may still be sending
// the rest of what it meant (a body, an oversized head); closing with those bytes
// unread would reset the connection and could destroy the answer before the
// client reads it, so the guard half-closes and drains for a moment first, as
// net/http does after its own 431.
func (g *Guard) Close() error {
	if g.linger.Load() {
		g.CloseWrite()
		g.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, g.Conn, lingerBytes)
	}
	return g.Conn.Close()
}

// ReadFrom keeps sendfile(2) for net/http's responses.
func (g *Guard) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := g.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{g.Conn}, r)
}

// CloseWrite lets net/http half-close the connection, as on a *net.TCPConn.
func (g *Guard) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type guardKey struct{}

// Refused reports whether r is the synthetic request the guard put in place of a
// refused head, and describes that head. A client that sends the marker field
// itself cannot know the connection's nonce: its request is an ordinary one.
func Refused(r *http.Request) (*Refusal, bool) {
	v, ok := r.Header[refusedField]
	if !ok {
		return nil, false
	}
	g, _ := r.Context().Value(guardKey{}).(*Guard)
	if g == nil || g.refusal == nil || len(v) != 1 || v[0] != g.nonce {
		return nil, false
	}
	return g.refusal, true
}

// guardHooks makes hs tell the guards of its connections about their state and
// put them in their requests' contexts, keeping hooks hs already has.
func guardHooks(hs *http.Server) {
	prevState, prevCtx := hs.ConnState, hs.ConnContext
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		if g := guardOf(c); g != nil {
			g.connState(st)
		}
		if prevState != nil {
			prevState(c, st)
		}
	}
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		if g := guardOf(c); g != nil {
			ctx = context.WithValue(ctx, guardKey{}, g)
		}
		return ctx
	}
}

// ServeGuarded runs hs on ln with every connection behind the framing guard; the
// server's handler must answer the requests Refused recognises.
func ServeGuarded(hs *http.Server, ln net.Listener, log *slog.Logger) error {
	guardHooks(hs)
	return hs.Serve(&guardListener{Listener: ln, max: hs.MaxHeaderBytes, hdrTimeout: hs.ReadHeaderTimeout, log: log})
}

type guardListener struct {
	net.Listener
	max        int
	hdrTimeout time.Duration
	log        *slog.Logger
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGuard(c, l.max, l.hdrTimeout, l.log), nil
}
