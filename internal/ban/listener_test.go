package ban

import (
	"gantry/internal/netconn"

	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gantry/internal/clientnet"
	"gantry/internal/peertest"
)

// banLoopback bans 127.0.0.1 as if it were a public client: loopback is never
// banned through the API, and the listener tests have only loopback to dial from.
func banLoopback(l *List) {
	l.ban(clientnet.Host(netip.MustParseAddr("127.0.0.1")), Exploit, "GET /.env", 0, l.now())
}

// serve runs an HTTP server on a banned-aware listener on 127.0.0.1:0.
func serve(t *testing.T, l *List) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(l.Listener(ln))
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// TestListenerRefusesBanned: a banned source's new connection is closed before
// a byte is answered; its open keep-alive connection is closed when the ban
// comes; the tracked connections do not outlive their close.
func TestListenerRefusesBanned(t *testing.T) {
	l, _ := newList(t, Options{})
	addr := serve(t, l)

	keep, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	br := bufio.NewReader(keep)
	get := func() error {
		keep.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(keep, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := get(); err != nil {
		t.Fatalf("before the ban: %v", err)
	}
	if n := l.OpenConns(); n != 1 {
		t.Fatalf("open conns %d, want 1", n)
	}

	banLoopback(l)
	// the open keep-alive connection is closed by the server: the client reads EOF
	keep.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("keep-alive connection after the ban: %v, want EOF or reset", err)
	}

	// a new connection is closed at accept with a reset (which may reach the
	// client before its connect returns): the request gets no answer
	c, err := net.Dial("tcp", addr)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if b, err := io.ReadAll(c); len(b) != 0 || (err != nil && !isReset(err)) {
			t.Fatalf("banned connection answered %q, %v", b, err)
		}
	}
	peertest.WaitFor(t, 10*time.Second, "refusal counted and no connection tracked", func() bool {
		_, st := l.Snapshot(0)
		return st.Refused >= 1 && l.OpenConns() == 0
	})

	if ok, _ := l.Unban("127.0.0.1"); !ok {
		t.Fatal("unban")
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("after unban: %v", err)
	}
	resp.Body.Close()
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// TestAdmitAndTrack: the QUIC side: Admit refuses a banned source, and a ban
// closes what Track registered.
func TestAdmitAndTrack(t *testing.T) {
	l, _ := newList(t, Options{})
	src := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4433}
	if !l.Admit(src) {
		t.Fatal("refused before any ban")
	}
	closed := make(chan struct{}, 1)
	untrack := l.Track(src, func() { closed <- struct{}{} })
	other := l.Track(&net.UDPAddr{IP: net.ParseIP("127.0.0.2"), Port: 1}, func() { t.Error("other source closed") })
	defer other()
	banLoopback(l)
	select {
	case <-closed:
	default:
		t.Fatal("tracked connection not closed by the ban")
	}
	untrack()
	if l.Admit(src) {
		t.Fatal("banned source admitted")
	}
}

// BenchmarkAccept is the cost the listener adds to an accept, with 100,000 bans
// held and the client not among them: the lookup and the tracking.
func BenchmarkAccept(b *testing.B) {
	l, _ := newList(b, Options{Max: 100001})
	for i := range 100000 {
		l.Offense(netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)}), Exploit, "GET /.env")
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	remote := &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 50000}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		a := AddrOf(remote)
		if l.refuse(a) {
			b.Fatal("refused")
		}
		k := clientnet.Host(a)
		tc := &conn{Watched: netconn.Watched{Conn: c1}, l: l, key: k}
		l.track(k, tc)
		tc.once.Do(func() { l.untrack(k, tc) })
	}
}

// TestTrackAfterBan: a QUIC connection is tracked only once its handshake is
// done, which the client may hold back past the ban that its own exploit over TCP
// brings; what is tracked after the ban must be closed too, or the connection
// serves the banned source for the whole ban.
func TestTrackAfterBan(t *testing.T) {
	l, _ := newList(t, Options{})
	src := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4433}
	if !l.Admit(src) { // the handshake starts before the ban
		t.Fatal("refused before any ban")
	}
	banLoopback(l)
	closed := false
	untrack := l.Track(src, func() { closed = true }) // and completes after it
	defer untrack()
	if !closed {
		t.Fatal("connection of a banned source tracked and left open")
	}
}

// TestBanDuringAccept: a ban that lands between the accept check and the
// tracking of the connection (here from the clock the check reads) must still
// close the connection; otherwise it serves the banned source until it goes idle.
func TestBanDuringAccept(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var armed atomic.Bool
	var l *List
	now := func() time.Time {
		if armed.CompareAndSwap(true, false) {
			banLoopback(l) // a ban issued while Accept checks
		}
		return c.now()
	}
	l, _ = newList(t, Options{Now: now})
	banLoopback(l)
	c.add(time.Hour) // expired, remembered: the check reads the clock
	addr := serve(t, l)
	armed.Store(true)
	conn, err := net.Dial("tcp", addr)
	if err != nil && !isReset(err) {
		t.Fatal(err)
	}
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
		resp.Body.Close()
		t.Fatalf("connection accepted as its source was banned is served: %s", resp.Status)
	}
}
