package dashboard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/certs"
	"gantry/internal/peertest"
	"gantry/internal/peertest/chromium"
)

// The dashboard reached over HTTPS, as one would from elsewhere: a site with the
// internal CA's certificate proxies to the admin listener. Chromium, trusting
// exactly that certificate, logs in and watches the live graphs over HTTP/2 (the
// event stream through the proxy), every resource comes over https, and nothing
// writes an error to the console (mixed content would).
func TestBrowserDashboardOverHTTPS(t *testing.T) {
	g := startGantry(t, setup{tls: true, password: "open sesame 42"})
	peertest.WaitFor(t, 20*time.Second, "the internal certificate for localhost", func() bool { return g.srv.Certs().HasCert("localhost") })
	text, err := os.ReadFile(g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	route := "\n  [[site.route]]\n  path = \"/\"\n  proxy = \"" + g.admin + "\"\n"
	if err := os.WriteFile(g.cfg, append(text, route...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := g.srv.TLSAddrs()[0].String()
	_, port, _ := net.SplitHostPort(addr)
	base := "https://localhost:" + port

	leaf := verifiedLeaf(t, addr, certs.RootPath(g.srv.Config().TLS.Storage))
	ctx := chromium.Start(t, chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900), chromium.TrustKeys(leaf))
	var mu sync.Mutex
	var console []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				console = append(console, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	}()

	run(t, ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#password")))
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#password"), "open sesame 42"), chromedp.Click(chromedp.CSS("#submit")))
	waitJS(t, ctx, "the dashboard after login", `location.href === "`+base+`/" && document.querySelector("#chart-requests canvas") !== null`)
	waitJS(t, ctx, "a chart update from the event stream", `Number(document.getElementById("chart-requests").dataset.samples) >= 3`)

	for _, c := range []struct{ what, js, want string }{
		{"protocol", `performance.getEntriesByType("navigation")[0].nextHopProtocol`, "h2"},
		{"resources not over https", `performance.getEntriesByType("resource").map(e => e.name).filter(u => !u.startsWith("https://")).join(" ")`, ""},
		{"resources not over h2", `performance.getEntriesByType("resource").filter(e => e.nextHopProtocol && e.nextHopProtocol !== "h2").map(e => e.name + " " + e.nextHopProtocol).join(" ")`, ""},
		{"insecure links and forms", `[...document.querySelectorAll("[src], link[href], form[action]")].map(e => new URL(e.getAttribute("src") || e.getAttribute("href") || e.getAttribute("action"), document.baseURI).href).filter(u => u.startsWith("http:")).join(" ")`, ""},
	} {
		if got := eval(t, ctx, chromedp.Evaluate[string](c.js)); got != c.want {
			t.Errorf("%s: %q, want %q", c.what, got, c.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		t.Errorf("console: %s", m)
	}
}

// verifiedLeaf is the certificate the listener at addr serves for localhost,
// after checking that it chains to the internal CA's root in rootFile.
func verifiedLeaf(t *testing.T, addr, rootFile string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", rootFile)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("the served certificate does not chain to %s: %v", rootFile, err)
	}
	defer c.Close()
	if issuer := c.ConnectionState().PeerCertificates[0].Issuer.CommonName; !strings.HasPrefix(issuer, "gantry local CA") {
		t.Errorf("issued by %q, want the internal CA", issuer)
	}
	return c.ConnectionState().PeerCertificates[0]
}
