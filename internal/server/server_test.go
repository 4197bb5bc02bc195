package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/config"

	"gantry/internal/peertest"
)

// startServer runs a server from TOML text (which may use %[1]s for a temp dir) and
// returns it with its base URL.
func startServer(t testing.TB, text string) (*Server, string, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "gantry.toml")
	writeFile(t, file, text)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveWith(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return srv, "http://" + srv.Addrs()[0].String(), file
}

// serveWith runs a server of cfg with opts until the test ends.
func serveWith(t testing.TB, cfg *config.Config, opts Options) *Server {
	t.Helper()
	srv, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func sitesConfig(t *testing.T) (string, string, string) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "index.html"), "site A")
	writeFile(t, filepath.Join(b, "index.html"), "site B")
	writeFile(t, filepath.Join(b, "assets", "x.css"), "css B")
	return a, b, fmt.Sprintf(`
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
max_body = "1KB"
read_header_timeout = "1s"

[admin]
listen = "off"

[[site]]
root = %q

[[site]]
hosts = ["example.com", "*.example.org"]
root = %q
  [[site.route]]
  path = "/go"
  redirect = "https://example.com/new"
  status = 301
`, a, b)
}

func TestVirtualHosts(t *testing.T) {
	_, _, text := sitesConfig(t)
	_, base, _ := startServer(t, text)
	tests := []struct {
		name, host, path string
		status           int
		body             string
	}{
		{"default site for unknown host", "unknown.test", "/", 200, "site A"},
		{"named site", "example.com", "/", 200, "site B"},
		{"host with port and case", "EXAMPLE.com:9999", "/assets/x.css", 200, "css B"},
		{"wildcard host", "blog.example.org", "/", 200, "site B"},
		{"site root served where no route matches", "example.com", "/assets/x.css", 200, "css B"},
		{"not in default site", "unknown.test", "/assets/x.css", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, base+tc.path, tc.host)
			if code != tc.status || (tc.body != "" && body != tc.body) {
				t.Errorf("GET %s Host %s = %d %q, want %d %q", tc.path, tc.host, code, body, tc.status, tc.body)
			}
		})
	}
}

func TestRedirectRoute(t *testing.T) {
	_, _, text := sitesConfig(t)
	_, base, _ := startServer(t, text)
	req, _ := http.NewRequest("GET", base+"/go", nil)
	req.Host = "example.com"
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://example.com/new" {
		t.Errorf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// rawRequest sends raw bytes and returns the status line of the answer.
func rawRequest(t *testing.T, base, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, raw)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestLimits(t *testing.T) {
	_, _, text := sitesConfig(t)
	_, base, _ := startServer(t, text)
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name, raw, want string
	}{
		{"body over max_body by length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n" + big, "HTTP/1.1 413"},
		{"1 MB header", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("y", 1<<20) + "\r\n\r\n", "HTTP/1.1 431"},
		{"NUL in path", "GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 400"},
		{"CONNECT refused", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "HTTP/1.1 405"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawRequest(t, base, tc.raw); !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChunkedBodyOverMaxBody(t *testing.T) {
	a := t.TempDir()
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nmax_body=\"1KB\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n  [[site.route]]\n  path=\"/up/\"\n  proxy=\"http://%s\"\n", a, ln.Addr()))
	chunk := strings.Repeat("z", 1500)
	raw := fmt.Sprintf("POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk)
	if got := rawRequest(t, base, raw); !strings.HasPrefix(got, "HTTP/1.1 413") {
		t.Errorf("chunked body over max_body: got %q, want 413", got)
	}
}

// A slowloris client sending one header byte at a time must lose its connection at
// read_header_timeout while other clients are served.
func TestSlowlorisCut(t *testing.T) {
	_, _, text := sitesConfig(t)
	_, base, _ := startServer(t, text)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closed := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		msg := "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("s", 1000)
		for i := 0; i < len(msg); i++ {
			if _, err := c.Write([]byte{msg[i]}); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, c)
		closed <- time.Since(start)
	}()
	if code, body := get(t, base+"/", ""); code != 200 || body != "site A" {
		t.Errorf("other client during slowloris: %d %q", code, body)
	}
	d := <-closed
	if d > 20*time.Second {
		t.Errorf("slow client held its connection for %v; read_header_timeout is 1s", d)
	}
}

func TestReload(t *testing.T) {
	a, b, text := sitesConfig(t)
	srv, base, file := startServer(t, text)
	if _, body := get(t, base+"/", "x"); body != "site A" {
		t.Fatalf("before reload: %q", body)
	}
	// swap the roots of the two sites
	swapped := strings.Replace(strings.Replace(text, a, "@A@", 1), b, a, 1)
	swapped = strings.Replace(swapped, "@A@", b, 1)
	writeFile(t, file, swapped)
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, base+"/", "x"); body != "site B" {
		t.Errorf("after reload: %q, want site B", body)
	}
	writeFile(t, file, swapped+"\n[bogus]\n")
	err := srv.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gantry.toml:") {
		t.Fatalf("invalid config reload: err = %v, want file:line error", err)
	}
	if _, body := get(t, base+"/", "x"); body != "site B" {
		t.Errorf("after failed reload the old config must serve: %q", body)
	}
	if st := srv.Status(); st.LastReload.OK || st.LastReload.Error == "" {
		t.Errorf("status last reload = %+v", st.LastReload)
	}
}

// Ten reloads under load from 32 clients: not one request fails.
func TestReloadUnderLoad(t *testing.T) {
	_, _, text := sitesConfig(t)
	srv, base, _ := startServer(t, text)
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(base + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "site A" {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		// let requests flow between reloads
		target := ok.Load() + 50
		peertest.WaitFor(t, 0, "50 more requests between reloads", func() bool { return ok.Load() >= target || failed.Load() != 0 })
		if err := srv.Reload(context.Background()); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d ok, %d failed during reloads", ok.Load(), failed.Load())
	}
}

// In-flight requests finish when the server shuts down.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\n  [[site.route]]\n  path=\"/\"\n  proxy=\"http://%s\"\n", ln.Addr()))
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-entered
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	// new connections are refused once shutdown started
	peertest.WaitFor(t, 10*time.Second, "new connections to be refused", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	close(release)
	if got := <-result; got != "finished" {
		t.Errorf("in-flight request got %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestObserverAndStatus(t *testing.T) {
	_, _, text := sitesConfig(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "g.toml")
	writeFile(t, file, text)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var recs []accesslog.Record
	srv.Observe(func(r *accesslog.Record) {
		mu.Lock()
		recs = append(recs, *r)
		mu.Unlock()
	})
	srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	base := "http://" + srv.Addrs()[0].String()
	get(t, base+"/assets/x.css", "example.com")
	get(t, base+"/nope", "example.com")
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 2 || recs[0].Status != 200 || recs[0].Site != "example.com" || recs[0].Route != "/" || recs[0].Bytes != 5 || recs[1].Status != 404 {
		t.Errorf("records: %+v", recs)
	}
	st := srv.Status()
	if st.RequestsTotal != 2 || len(st.Sites) != 2 || st.Sites[1].Routes[0].Kind != "redirect" {
		t.Errorf("status: %+v", st)
	}
}

// A proxied upstream's Server header is hidden behind gantry's own, as nginx does.
func TestOneServerHeader(t *testing.T) {
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "upstream/1.0")
		io.WriteString(w, "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	_, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\n  [[site.route]]\n  path=\"/\"\n  proxy=\"http://%s\"\n", ln.Addr()))
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Server"); len(got) != 1 || got[0] != "gantry" {
		t.Errorf("Server headers = %q, want just gantry", got)
	}
}
