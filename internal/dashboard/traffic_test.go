package dashboard

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// deadBackend is an address that refuses connections: a proxy route to it
// answers 502.
func deadBackend(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRouteNumbersFromTraffic drives known requests at two routes and reads
// back the counts, error rates and top lists a user would read on the page.
func TestRouteNumbersFromTraffic(t *testing.T) {
	g := startGantry(t, setup{extra: fmt.Sprintf("\n[[site.route]]\npath = \"/dead/\"\nproxy = \"http://%s\"\n", deadBackend(t))})
	c := client()
	const ok, missing, dead = 20, 10, 5
	for i := range ok {
		if resp, _ := do(t, c, "GET", g.web+"/index.html", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %s", i, resp.Status)
		}
	}
	for i := range missing {
		// the query differs each time: the top lists count paths
		if resp, _ := do(t, c, "GET", fmt.Sprintf("%s/nope?x=%d", g.web, i), nil, nil); resp.StatusCode != 404 {
			t.Fatalf("missing %d: %s", i, resp.Status)
		}
	}
	for i := range dead {
		if resp, _ := do(t, c, "POST", g.web+"/dead/x", strings.NewReader("0123456789"), nil); resp.StatusCode != 502 {
			t.Fatalf("dead %d: %s", i, resp.Status)
		}
	}
	var routes []RouteStats
	peertest.WaitFor(t, 10*time.Second, "the routes' counts", func() bool {
		routes = nil
		getJSON(t, c, g.admin+"/api/routes", &routes)
		n := 0
		for _, r := range routes {
			n += int(r.Total)
		}
		return n == ok+missing+dead
	})
	byRoute := map[string]RouteStats{}
	for _, r := range routes {
		byRoute[r.Route] = r
	}
	root, dr := byRoute["/"], byRoute["/dead/"]
	if root.Site != "default" || root.Total != ok+missing || root.Error != 0 || root.RPS <= 0 || root.P50MS <= 0 || root.P99MS < root.P50MS || len(root.Spark) == 0 {
		t.Errorf("route / = %+v", root)
	}
	if dr.Total != dead || dr.Error != 1 || dr.AvgMS <= 0 {
		t.Errorf("route /dead/ = %+v", dr)
	}

	var top TopLists
	getJSON(t, c, g.admin+"/api/top", &top)
	if len(top.URLs) < 3 || top.URLs[0] != (TopEntry{Key: "/index.html", Count: ok}) || top.URLs[1] != (TopEntry{Key: "/nope", Count: missing}) {
		t.Errorf("top URLs = %+v", top.URLs)
	}
	if len(top.NotFound) != 1 || top.NotFound[0] != (TopEntry{Key: "/nope", Count: missing}) {
		t.Errorf("top 404s = %+v", top.NotFound)
	}
	if len(top.Clients) != 1 || top.Clients[0] != (TopEntry{Key: "127.0.0.1", Count: ok + missing + dead}) {
		t.Errorf("top clients = %+v", top.Clients)
	}

	// /metrics: bytes both ways, and the in-flight gauge (the scrape itself is
	// not a site request). The dead backend's bodies were never read: no bytes
	// in (TestBytesInCountsBodiesRead counts bodies that are).
	_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	for _, want := range []string{
		"gantry_http_request_body_bytes_total 0\n",
		"gantry_http_requests_in_flight 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(metrics, "gantry_http_response_bytes_total ") || strings.Contains(metrics, "gantry_http_response_bytes_total 0\n") {
		t.Error("metrics lack the response bytes")
	}
}

// TestHistorySurvivesRestart: the graphs of a gantry that stopped come back
// when it starts again with the same state directory.
func TestHistorySurvivesRestart(t *testing.T) {
	file := t.TempDir() + "/state/dashboard-history"
	g := startGantry(t, setup{history: file})
	c := client()
	var before HistorySeries
	peertest.WaitFor(t, 20*time.Second, "a second with requests in the history", func() bool {
		do(t, c, "GET", g.web+"/index.html", nil, nil)
		before = HistorySeries{}
		getJSON(t, c, g.admin+"/api/history?range=5m", &before)
		for _, v := range before.Series["2xx"] {
			if v > 0 {
				return true
			}
		}
		return false
	})
	g.dash.Close()

	g2 := startGantry(t, setup{history: file})
	var after HistorySeries
	getJSON(t, c, g2.admin+"/api/history?range=5m", &after)
	got := map[float64]float64{}
	for i, ts := range after.T {
		got[ts] = after.Series["2xx"][i]
	}
	kept := 0
	for i, ts := range before.T {
		if v, ok := got[ts]; ok && v == before.Series["2xx"][i] {
			kept++
		}
	}
	if kept != len(before.T) || kept == 0 {
		t.Fatalf("after the restart %d of %d points are back", kept, len(before.T))
	}
	resp, body := do(t, c, "GET", g2.admin+"/api/history?range=1y", nil, nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "want 5m, 1h, 24h or 7d") {
		t.Fatalf("range=1y: %s %s", resp.Status, body)
	}
}

// TestInFlight: a request a slow backend holds counts as in flight until it ends.
func TestInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Write([]byte("late\n"))
	}))
	t.Cleanup(backend.Close)
	g := startGantry(t, setup{extra: fmt.Sprintf("\n[[site.route]]\npath = \"/slow/\"\nproxy = %q\n", backend.URL)})
	c := client()
	done := make(chan string)
	go func() {
		resp, err := http.Get(g.web + "/slow/x")
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- resp.Status + " " + string(b)
	}()
	<-arrived
	_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	if !strings.Contains(metrics, "gantry_http_requests_in_flight 1\n") {
		t.Errorf("a held request is not in flight:\n%s", grepLines(metrics, "in_flight"))
	}
	sse(t, c, g.admin+"/api/events", func(s Sample) bool { return s.InFlight == 1 })
	close(release)
	if got := <-done; got != "200 OK late\n" {
		t.Fatalf("slow request: %q", got)
	}
	peertest.WaitFor(t, 10*time.Second, "no request in flight", func() bool {
		_, m := do(t, c, "GET", g.admin+"/metrics", nil, nil)
		return strings.Contains(m, "gantry_http_requests_in_flight 0\n")
	})
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestBytesInCountsBodiesRead: bytes in are the body bytes that arrived, not a
// Content-Length: a chunked upload counts in full, and a client declaring a
// terabyte it never sends (refused before its body) cannot make the graph
// show one.
func TestBytesInCountsBodiesRead(t *testing.T) {
	got := make(chan int64, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- n
	}))
	t.Cleanup(backend.Close)
	g := startGantry(t, setup{extra: fmt.Sprintf("\n[[site.route]]\npath = \"/up/\"\nproxy = %q\n", backend.URL)})
	c := client()

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.web, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", int64(1)<<40)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, _ := io.ReadAll(io.LimitReader(conn, 12))
	conn.Close()
	if !strings.HasPrefix(string(status), "HTTP/1.1 4") {
		t.Fatalf("a terabyte declared: %q", status)
	}

	const size = 100_000
	// an io.Reader that is not a *strings.Reader: net/http sends it chunked
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", size)))
	if resp, _ := do(t, c, "POST", g.web+"/up/x", body, nil); resp.StatusCode != 200 {
		t.Fatalf("chunked upload: %s", resp.Status)
	}
	if n := <-got; n != size {
		t.Fatalf("the backend read %d bytes, want %d", n, size)
	}
	peertest.WaitFor(t, 10*time.Second, "both requests counted", func() bool {
		var routes []RouteStats
		getJSON(t, c, g.admin+"/api/routes", &routes)
		n := uint64(0)
		for _, r := range routes {
			n += r.Total
		}
		return n == 2
	})
	_, metrics := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	if want := fmt.Sprintf("gantry_http_request_body_bytes_total %d\n", size); !strings.Contains(metrics, want) {
		t.Errorf("want %q, got:\n%s", want, grepLines(metrics, "body_bytes_total"))
	}
}
