package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/accesslog"
	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/telescope/httpsensor"
)

// startObserved is startServer with an observer of every request's record.
func startObserved(t *testing.T, text string, obs Observer) (*Server, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gantry.toml")
	writeFile(t, file, text)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Observe(obs)
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, "http://" + srv.Addrs()[0].String()
}

// records keeps the records the server hands its observers.
type records struct {
	mu   sync.Mutex
	list []accesslog.Record
}

func (rs *records) observe(rec *accesslog.Record) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	c := *rec
	c.Request = nil
	rs.list = append(rs.list, c)
}

// nth waits for the nth record (from 1): a request is recorded after its
// response went out, so the client may read it first.
func (rs *records) nth(t *testing.T, n int) accesslog.Record {
	t.Helper()
	peertest.WaitFor(t, 10*time.Second, "the request's record", func() bool {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return len(rs.list) >= n
	})
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.list[n-1]
}

func authGet(t *testing.T, url, user, pw string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Basic auth on a site: each hash kind lets its user in, the rest get 401 with
// the realm; an exempt route needs nothing; the backends behind (a CGI script, an
// upstream) never see the credentials but the user's name, unless the route asks
// for them; the access log names the user; a reload reads the file again.
func TestBasicAuth(t *testing.T) {
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	writeFile(t, filepath.Join(www, "a.txt"), "secret file\n")
	writeFile(t, filepath.Join(www, "public", "p.txt"), "public file\n")
	pwfile := filepath.Join(dir, "htpasswd")
	orig, err := os.ReadFile("testdata/htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, pwfile, string(orig))
	script := filepath.Join(dir, "cgi", "env.cgi")
	writeFile(t, script, "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | grep -E '^(HTTP_AUTHORIZATION|REMOTE_USER|AUTH_TYPE)=' | sort\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	var upstreamSaw sync.Map // path -> Authorization header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamSaw.Store(r.URL.Path, r.Header.Values("Authorization"))
		io.WriteString(w, "from upstream\n")
	}))
	t.Cleanup(upstream.Close)

	var recs records
	srv, base := startObserved(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+www+`"
auth = "`+pwfile+`"
auth_realm = "Staff only"
  [[site.route]]
  path = "/cgi/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  [[site.route]]
  path = "/cgi-pass/"
  cgi = "`+filepath.Join(dir, "cgi")+`"
  pass_authorization = true
  [[site.route]]
  path = "/api/"
  proxy = "`+upstream.URL+`"
  [[site.route]]
  path = "/public/"
  static = "`+filepath.Join(www, "public")+`"
  auth = "off"
`, recs.observe)

	tests := []struct {
		name, path, user, pw string
		status               int
		body                 string // the body, or for the CGI script what it saw
		logUser              string
	}{
		{"no credentials", "/a.txt", "", "", 401, "", ""},
		{"bcrypt $2y$", "/a.txt", "alice", "alice-secret", 200, "secret file\n", "alice"},
		{"argon2id", "/a.txt", "bob", "bob secret ✓", 200, "secret file\n", "bob"},
		{"bcrypt $2a$ with a colon in the password", "/a.txt", "carol", "carol:colon", 200, "secret file\n", "carol"},
		{"a wrong password", "/a.txt", "alice", "bob secret ✓", 401, "", ""},
		{"an unknown user", "/a.txt", "eve", "alice-secret", 401, "", ""},
		{"a CGI script sees the user, not the credentials", "/cgi/env.cgi", "alice", "alice-secret", 200,
			"AUTH_TYPE=Basic\nREMOTE_USER=alice\n", "alice"},
		{"with pass_authorization it sees them too", "/cgi-pass/env.cgi", "alice", "alice-secret", 200,
			"AUTH_TYPE=Basic\nHTTP_AUTHORIZATION=Basic YWxpY2U6YWxpY2Utc2VjcmV0\nREMOTE_USER=alice\n", "alice"},
		{"the CGI route refuses without credentials", "/cgi/env.cgi", "", "", 401, "", ""},
		{"an upstream", "/api/x", "bob", "bob secret ✓", 200, "from upstream\n", "bob"},
		{"the exempt route", "/public/p.txt", "", "", 200, "public file\n", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := authGet(t, base+tc.path, tc.user, tc.pw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status == 401 {
				if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="Staff only", charset="UTF-8"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if strings.Contains(body, "secret") {
					t.Errorf("the 401 shows the resource: %q", body)
				}
			} else if body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if rec := recs.nth(t, i+1); rec.User != tc.logUser || rec.Status != tc.status {
				t.Errorf("access log record: user %q status %d, want %q and %d", rec.User, rec.Status, tc.logUser, tc.status)
			}
		})
	}
	// A POST without credentials is refused before its body is read: a gateway
	// route spools bodies, and the client here sends the head and never the rest.
	t.Run("refused before the body is read", func(t *testing.T) {
		if got := statusBeforeBody(t, base, "/cgi/env.cgi", ""); got != "HTTP/1.1 401 Unauthorized" {
			t.Errorf("answer %q, want 401 before the body", got)
		}
	})
	if v, ok := upstreamSaw.Load("/api/x"); !ok || len(v.([]string)) != 0 {
		t.Errorf("the upstream saw Authorization %q, want none", v)
	}

	// A reload reads the file again: alice's line is gone, dave's is new.
	dave := "dave:$2a$04$TNDzn202G.SDN.A9vZ/vCOfdS8UL7dgvUi15xmhFSU3O/mo5ltrhy\n" // carol's hash: "carol:colon"
	writeFile(t, pwfile, strings.Replace(string(orig), "alice:", "# alice:", 1)+dave)
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := authGet(t, base+"/a.txt", "alice", "alice-secret"); resp.StatusCode != 401 {
		t.Errorf("alice after her line was removed: %d, want 401", resp.StatusCode)
	}
	if resp, _ := authGet(t, base+"/a.txt", "dave", "carol:colon"); resp.StatusCode != 200 {
		t.Errorf("dave after his line was added: %d, want 200", resp.StatusCode)
	}
	// A file that went bad fails the reload, and the running one keeps serving.
	writeFile(t, pwfile, "dave:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n")
	if err := srv.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("reload with a weak line: %v, want an error naming line 1", err)
	}
	if resp, _ := authGet(t, base+"/a.txt", "dave", "carol:colon"); resp.StatusCode != 200 {
		t.Errorf("dave after a failed reload: %d, want 200", resp.StatusCode)
	}
}

// statusBeforeBody sends a POST head announcing a 10 MB body, and a little of it,
// and returns the status line of the answer that comes without the rest.
func statusBeforeBody(t *testing.T, base, path, extra string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a server waiting for the body never answers
	if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\n"+extra+"Content-Length: 10000000\r\n\r\n"+strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	return strings.TrimRight(line, "\r\n")
}

// clientFrom is an HTTP client whose connections come from the loopback address
// ip (127.0.0.2 works as well as 127.0.0.1 on Linux).
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// A client gets its burst, then 429 with Retry-After; another address is another
// client; a limited request is what the telescope's HTTP sensor counts as
// rate-limited; an exempt route is not limited.
func TestRateLimit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "a\n")
	writeFile(t, filepath.Join(dir, "free", "f.txt"), "f\n")
	sensor := httpsensor.New(httpsensor.Options{})
	var recs records
	_, base := startObserved(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+dir+`"
rate = "1r/m"
burst = 3
  [[site.route]]
  path = "/free/"
  static = "`+filepath.Join(dir, "free")+`"
  rate = "off"
`, func(rec *accesslog.Record) {
		sensor.Observe(rec.Request, rec.Status, rec.Site, false, rec.Time)
		recs.observe(rec)
	})
	one, two := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	get := func(c *http.Client, path string) *http.Response {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := get(one, "/a.txt"); resp.StatusCode != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, resp.StatusCode)
		}
	}
	resp := get(one, "/a.txt")
	if resp.StatusCode != 429 {
		t.Fatalf("past the burst: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds (1r/m)", resp.Header.Get("Retry-After"))
	}
	if rec := recs.nth(t, 4); rec.Status != 429 || !strings.HasPrefix(rec.RemoteAddr, "127.0.0.1:") {
		t.Errorf("access log record: %d from %s", rec.Status, rec.RemoteAddr)
	}
	if resp := get(two, "/a.txt"); resp.StatusCode != 200 {
		t.Errorf("another client: %d, want 200", resp.StatusCode)
	}
	if resp := get(one, "/free/f.txt"); resp.StatusCode != 200 {
		t.Errorf("the exempt route: %d, want 200", resp.StatusCode)
	}
	recs.nth(t, 6) // the sensor has seen every request
	snap := sensor.Snapshot(10)
	if len(snap.Sources) != 1 || snap.Sources[0].Source != "127.0.0.1" || snap.Sources[0].Rules["rate-limited"] != 1 {
		t.Errorf("the sensor's sources: %+v, want 127.0.0.1 with one rate-limited request", snap.Sources)
	}
}

// A WSGI app behind basic auth, its GETs answered on the fast path: the app gets
// REMOTE_USER and no credentials, and the fast path's record names the user.
func TestBasicAuthWSGIFastPath(t *testing.T) {
	py := peertest.Python(t)
	dir := t.TempDir()
	pwfile, err := filepath.Abs("testdata/htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "whoami.py"), `def application(environ, start_response):
    seen = "auth=%r user=%r type=%r" % (environ.get("HTTP_AUTHORIZATION"), environ.get("REMOTE_USER"), environ.get("AUTH_TYPE"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [seen.encode()]
`)
	var recs records
	srv, base := startObserved(t, `
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = "`+dir+`"
  [[site.route]]
  path = "/"
  wsgi = "whoami:application"
  python = "`+py+`"
  chdir = "`+dir+`"
  processes = 1
  auth = "`+pwfile+`"
`, recs.observe)
	hits := srv.fastHits.Load()
	resp, body := authGet(t, base+"/", "bob", "bob secret ✓")
	if resp.StatusCode != 200 || body != "auth=None user='bob' type='Basic'" {
		t.Fatalf("status %d, the app saw %s", resp.StatusCode, body)
	}
	if rec := recs.nth(t, 1); rec.User != "bob" {
		t.Errorf("record user %q, want bob", rec.User)
	}
	if srv.fastHits.Load() == hits {
		t.Error("the request did not take the fast path")
	}
	if resp, _ := authGet(t, base+"/", "bob", "wrong"); resp.StatusCode != 401 {
		t.Errorf("a wrong password on the fast path: %d, want 401", resp.StatusCode)
	}
}
