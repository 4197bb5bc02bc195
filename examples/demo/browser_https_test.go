package demo

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"gantry/internal/certs"
	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/peertest/chromium"
)

// Every page of the demo over HTTPS, in a Chromium that trusts the certificate of
// gantry's internal CA and nothing else untrusted: it arrives over HTTP/2, every
// resource it loads and every form it posts to is https (no mixed content, which
// Chromium would block and report), and nothing writes to the console.
func TestBrowserHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	storage := t.TempDir()
	srv := startSite(t, func(cfg *config.Config) {
		cfg.Server.TLSListen = []string{"127.0.0.1:0"}
		off := false
		cfg.Server.HTTP3 = &off // HTTP/3 would take over from h2 once Alt-Svc is seen
		cfg.TLS.Storage = storage
		cfg.Sites[0].Hosts = []string{"localhost"}
		cfg.Sites[0].TLS = config.TLSInternal
	})
	peertest.WaitFor(t, 20*time.Second, "the internal certificate for localhost", func() bool {
		return srv.Certs().HasCert("localhost")
	})
	_, port, _ := net.SplitHostPort(srv.TLSAddrs()[0].String())
	base := "https://localhost:" + port
	b := browserOn(t, base, chromium.TrustKeys(servedLeaf(t, srv.TLSAddrs()[0].String(), certs.RootPath(storage))))

	for url := range sitePages(t) {
		t.Run(url, func(t *testing.T) {
			missing := url == "/no-such-page"
			if missing {
				b.run(t, b.setQuiet(true))
			}
			b.run(t, b.load(url),
				expect(t, "scheme", `location.protocol`, "https:"),
				expect(t, "protocol", `performance.getEntriesByType("navigation")[0].nextHopProtocol`, "h2"),
				expect(t, "resources not over https", `performance.getEntriesByType("resource").map(e => e.name).filter(u => !u.startsWith("https://")).join(" ")`, ""),
				expect(t, "resources not over h2", `performance.getEntriesByType("resource").filter(e => e.nextHopProtocol && e.nextHopProtocol !== "h2").map(e => e.name + " " + e.nextHopProtocol).join(" ")`, ""),
				expect(t, "insecure links and forms", `[...document.querySelectorAll("[src], link[href], form[action]")].map(e => new URL(e.getAttribute("src") || e.getAttribute("href") || e.getAttribute("action"), document.baseURI).href).filter(u => u.startsWith("http:")).join(" ")`, ""),
				expect(t, "broken images", `[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src).join(" ")`, ""),
			)
			if missing {
				b.run(t, b.load("/"), b.setQuiet(false))
			}
		})
	}
}

// servedLeaf is the certificate the listener at addr serves for localhost, after
// checking that it chains to the internal CA's root in rootFile: Chromium is then
// told to trust exactly that key.
func servedLeaf(t *testing.T, addr, rootFile string) *x509.Certificate {
	t.Helper()
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", rootFile)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("the served certificate does not chain to %s: %v", rootFile, err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN chose %q, want h2", p)
	}
	if !strings.HasPrefix(c.ConnectionState().PeerCertificates[0].Issuer.CommonName, "gantry local CA") {
		t.Errorf("issuer %q", c.ConnectionState().PeerCertificates[0].Issuer.CommonName)
	}
	return c.ConnectionState().PeerCertificates[0]
}
