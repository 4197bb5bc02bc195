package server

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// serveTLSH2 serves h over TLS with HTTP/2 and HTTP/1.1 by ALPN with the
// standard library's server (TLS 1.2 at least), and returns the address: the
// reference gantry's own listener (internal/http1 and internal/h2) is held to.
func serveTLSH2(t testing.TB, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	hs := &http.Server{Handler: h, TLSConfig: cfg, Protocols: p, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)}
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("TLS server: %v", err)
		}
	})
	return ln.Addr().String()
}

// h2specReport is the part of h2spec's JUnit report the test reads.
type h2specReport struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Name    string    `xml:"classname,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// h2specResult is one h2spec run: every case's id ("http2/8.1.2.2/1", as h2spec
// takes them) with its title, and the failed ones.
type h2specResult struct {
	all, failed []string
	names       map[string]string
}

// h2spec runs h2spec (the cases named, or all) against addr.
func h2spec(bin, addr string, cases ...string) (h2specResult, error) {
	var res h2specResult
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "h2spec")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	report := filepath.Join(dir, "report.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"--tls", "--insecure", "--host", "127.0.0.1", "--port", port, "--junit-report", report}, cases...)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return res, fmt.Errorf("running h2spec: %w\n%s", err, out)
	}
	data, rerr := os.ReadFile(report)
	if rerr != nil {
		return res, fmt.Errorf("h2spec wrote no report (%v): %w\n%s", err, rerr, out)
	}
	// A failed case's message quotes the frames it got, control bytes and
	// all, which XML cannot hold: they would make one timing failure (retried
	// below) fail the whole test.
	for i, b := range data {
		if b < 0x20 && b != '\t' && b != '\n' && b != '\r' {
			data[i] = '?'
		}
	}
	var r h2specReport
	if err := xml.Unmarshal(data, &r); err != nil {
		return res, fmt.Errorf("h2spec report: %w", err)
	}
	res.names = map[string]string{}
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			id := fmt.Sprintf("%s/%d", s.Package, i+1)
			res.all = append(res.all, id)
			res.names[id] = c.Name
			if c.Failure != nil || c.Error != nil || c.Skipped != nil {
				res.failed = append(res.failed, id)
			}
		}
	}
	return res, nil
}

// gantry's HTTPS listener passes every h2spec case that Go's own
// HTTP/2 server passes (Go's fails a few where it answers instead of resetting
// the stream; the issue measured 139 of 145 with Go 1.26).
func TestH2spec(t *testing.T) {
	bin := peertest.Binary(t, "h2spec")
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	writeFile(t, filepath.Join(www, "index.html"), strings.Repeat("<p>gantry over HTTP/2</p>\n", 4096))
	// gantry's own TLS listener, as configured by tls_listen, with its internal CA.
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts = [\"127.0.0.1\", \"localhost\"]\nroot = %q\n", www))
	peertest.WaitFor(t, 20*time.Second, "the certificate for 127.0.0.1", func() bool { return ts.srv.Certs().HasCert("127.0.0.1") })
	cfg, _ := peertest.SelfSigned(t)

	gantryAddr := ts.tls
	goAddr := serveTLSH2(t, http.FileServer(http.Dir(www)), cfg)

	type refResult struct {
		h2specResult
		err error
	}
	refc := make(chan refResult, 1)
	go func() {
		res, err := h2spec(bin, goAddr)
		refc <- refResult{res, err}
	}()
	got, err := h2spec(bin, gantryAddr)
	r := <-refc
	if err != nil {
		t.Fatalf("h2spec against gantry: %v", err)
	}
	if r.err != nil {
		t.Fatalf("h2spec against Go's server: %v", r.err)
	}
	ref := r.h2specResult
	all, failed, names := got.all, got.failed, got.names
	if len(all) == 0 || len(all) != len(ref.all) {
		t.Fatalf("h2spec ran %d cases against gantry, %d against Go's server", len(all), len(ref.all))
	}
	t.Logf("h2spec: gantry passes %d of %d, Go's net/http server %d of %d", len(all)-len(failed), len(all), len(ref.all)-len(ref.failed), len(ref.all))
	for _, id := range failed {
		t.Logf("gantry fails %s: %s", id, names[id])
	}
	for _, id := range ref.failed {
		t.Logf("Go's server fails %s: %s", id, ref.names[id])
	}
	var worse []string
	for _, id := range failed {
		if !slices.Contains(ref.failed, id) {
			worse = append(worse, id)
		}
	}
	// h2spec waits 2s for each answer, and some cases race the handler's answer
	// against the client's next frame: on a loaded machine a case can fail by
	// timing; a real failure fails every time.
	for try := 0; try < 3 && len(worse) > 0; try++ {
		again, err := h2spec(bin, gantryAddr, worse...)
		if err != nil {
			t.Fatalf("h2spec against gantry: %v", err)
		}
		worse = again.failed
	}
	for _, id := range worse {
		t.Errorf("gantry fails h2spec %s, which Go's own server passes: %s", id, names[id])
	}
}
