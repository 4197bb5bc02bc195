package httpsensor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// Recorded traffic of real scanners run against a small site on loopback. Rerun the
// tools and rewrite testdata/*.rec with: go test -run TestRecordedScanners -record
var record = flag.Bool("record", false, "run the scanners again and rewrite testdata/*.rec")

// site is a three-page web site: what a crawler sees, and what a scanner probes.
var site = map[string]string{
	"/":                `<html><head><link rel="stylesheet" href="/style.css"></head><body><a href="/about.html">about</a> <a href="/blog/first.html">blog</a></body></html>`,
	"/about.html":      `<html><body><a href="/">home</a></body></html>`,
	"/blog/first.html": `<html><body><a href="/">home</a> <a href="/about.html">about</a></body></html>`,
	"/style.css":       `body { color: #333 }`,
}

func siteHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, ok := site[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(body))
}

// serveSite serves the site on addr, every request observed by s, until the test ends.
func serveSite(t *testing.T, addr string, s *Sensor) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	seen := new(atomic.Int64)
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w, status: 200}
		siteHandler(rw, r)
		s.Observe(r, rw.status, "default", false, time.Now())
		seen.Add(1)
	})}
	go hs.Serve(s.WrapListener(ln))
	t.Cleanup(func() { hs.Close() })
	return ln, seen
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// scannerAddr finds a free loopback address on port 8080: nmap runs its http
// scripts only on ports it knows as HTTP, and 127.0.0.0/8 is all loopback.
func scannerAddr(t *testing.T) string {
	t.Helper()
	for i := 0; i < 50; i++ {
		a := fmt.Sprintf("127.%d.%d.%d:8080", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(250))
		if ln, err := net.Listen("tcp", a); err == nil {
			ln.Close()
			return a
		}
	}
	t.Fatal("no free loopback address with port 8080")
	return ""
}

type scenario struct {
	name string
	// commands run in turn; ADDR, HOST, PORT and TMP are replaced
	tools [][]string
	// anyExit: the client fails by design (it talks TLS or SSH to an HTTP server)
	anyExit bool
	// check judges what the sensor made of the traffic
	check func(t *testing.T, s *Sensor, requests int)
}

func counts(s *Sensor) map[string]uint64 {
	m := map[string]uint64{}
	for _, rc := range s.Counts() {
		if rc.Count > 0 {
			m[rc.Name] = rc.Count
		}
	}
	return m
}

var scenarios = []scenario{
	{
		name:  "nmap-http-scripts",
		tools: [][]string{{"nmap", "-Pn", "-n", "-p", "PORT", "--script", "http-enum,http-methods,http-shellshock,http-git,http-passwd,http-config-backup", "HOST"}},
		check: func(t *testing.T, s *Sensor, requests int) {
			c := counts(s)
			snap := s.Snapshot(5)
			// every request carries the Nmap Scripting Engine user agent
			if requests < 500 || snap.UnsolicitedTotal != uint64(requests) {
				t.Errorf("%d requests, %d unsolicited", requests, snap.UnsolicitedTotal)
			}
			if snap.Categories[Exploit] < 50 {
				t.Errorf("only %d exploit verdicts: %v", snap.Categories[Exploit], c)
			}
			for _, rule := range []string{"scanner-user-agent", "phpmyadmin", "wordpress", "vcs-metadata", "path-traversal", "shellshock"} {
				if c[rule] == 0 {
					t.Errorf("rule %s never fired: %v", rule, c)
				}
			}
			if len(snap.Sources) != 1 || snap.Sources[0].Requests != snap.UnsolicitedTotal {
				t.Errorf("sources = %+v", snap.Sources)
			}
		},
	},
	{
		// what scanners that try every protocol on every port send first
		name:    "tls-and-ssh-clients",
		tools:   [][]string{{"openssl", "s_client", "-connect", "ADDR", "-servername", "example.com"}, {"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-p", "PORT", "scan@HOST"}},
		anyExit: true,
		check: func(t *testing.T, s *Sensor, requests int) {
			c := counts(s)
			if c["tls-on-http"] != 1 || c["ssh-on-http"] != 1 || len(c) != 2 {
				t.Errorf("want one TLS and one SSH probe: %v", c)
			}
			snap := s.Snapshot(5)
			if len(snap.Recent) != 2 || snap.Recent[0].Source != "127.0.0.1" {
				t.Errorf("recent = %+v", snap.Recent)
			}
		},
	},
	{
		name:  "wget-mirror",
		tools: [][]string{{"wget", "-q", "-r", "-l", "3", "-np", "-P", "TMP", "http://ADDR/"}},
		check: func(t *testing.T, s *Sensor, requests int) {
			// a crawler that follows links is a visitor; its one 404 (robots.txt) is legit
			if requests < 4 || s.Total() != 0 {
				t.Errorf("%d requests, unsolicited: %v", requests, counts(s))
			}
		},
	},
}

// recorder keeps every byte clients send, one entry per connection.
type recorder struct {
	net.Listener
	mu    sync.Mutex
	conns [][]byte
}

type recConn struct {
	net.Conn
	r    *recorder
	buf  bytes.Buffer
	once sync.Once
}

func (l *recorder) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, r: l}, nil
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.buf.Write(p[:n])
	return n, err
}

func (c *recConn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		if c.buf.Len() > 0 {
			c.r.conns = append(c.r.conns, c.buf.Bytes())
		}
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}

func runTool(t *testing.T, sc scenario, addr string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	for _, tool := range sc.tools {
		args := slices.Clone(tool)
		for i, a := range args {
			switch a {
			case "HOST":
				args[i] = host
			case "PORT":
				args[i] = port
			case "TMP":
				args[i] = t.TempDir()
			case "ADDR":
				args[i] = addr
			case "http://ADDR/":
				args[i] = "http://" + addr + "/"
			case "scan@HOST":
				args[i] = "scan@" + host
			}
		}
		bin := peertest.Binary(t, args[0])
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, bin, args[1:]...)
		cmd.Stdin = nil // openssl s_client ends at EOF on stdin
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		wget404 := args[0] == "wget" && errors.As(err, &ee) && ee.ExitCode() == 8 // robots.txt is missing
		if err != nil && !wget404 && !(sc.anyExit && errors.As(err, &ee)) {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
}

func recordScenario(t *testing.T, sc scenario, path string) {
	addr := scannerAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Listener: ln}
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(siteHandler)}
	go hs.Serve(rec)
	runTool(t, sc, addr)
	hs.Shutdown(context.Background())
	hs.Close()
	var out bytes.Buffer
	rec.mu.Lock()
	for _, c := range rec.conns {
		fmt.Fprintf(&out, "conn %d\n", len(c))
		out.Write(c)
		out.WriteByte('\n')
	}
	rec.mu.Unlock()
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRecording(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (record it with -record)", err)
	}
	var conns [][]byte
	for len(data) > 0 {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		n, err := strconv.Atoi(string(bytes.TrimPrefix(line, []byte("conn "))))
		if !ok || err != nil || n > len(rest) {
			t.Fatalf("%s: bad record header %q", path, line)
		}
		conns = append(conns, rest[:n])
		data = bytes.TrimPrefix(rest[n:], []byte("\n"))
	}
	return conns
}

// replay sends each recorded connection's bytes to addr over a new connection, as
// the scanner did, and reads the answers until the server closes.
func replay(t *testing.T, addr string, conns [][]byte) int {
	t.Helper()
	requests := 0
	for _, data := range conns {
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			if _, err := http.ReadRequest(br); err != nil {
				break
			}
			requests++
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}
	return requests
}

func TestRecordedScanners(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			path := filepath.Join("testdata", sc.name+".rec")
			if *record {
				recordScenario(t, sc, path)
			}
			conns := readRecording(t, path)
			s := New(Options{})
			ln, seen := serveSite(t, "127.0.0.1:0", s)
			requests := replay(t, ln.Addr().String(), conns)
			// the server observes a request after answering it: wait for the last
			peertest.WaitFor(t, 10*time.Second, fmt.Sprintf("the sensor to observe all %d requests", requests), func() bool {
				return int(seen.Load()) >= requests
			})
			sc.check(t, s, requests)
		})
	}
}

// TestLiveNmap runs nmap's http scripts against the sensor as it happens.
func TestLiveNmap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nmap")
	}
	sc := scenarios[0]
	s := New(Options{})
	ln, _ := serveSite(t, scannerAddr(t), s)
	runTool(t, sc, ln.Addr().String())
	snap := s.Snapshot(5)
	if snap.Categories[Scanner] < 100 || snap.Categories[Exploit] < 50 || len(snap.Sources) != 1 {
		t.Fatalf("nmap not seen as scanner and exploits: %v %+v", snap.Categories, snap.Sources)
	}
}
