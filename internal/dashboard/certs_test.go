package dashboard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/peertest"
	"gantry/internal/server"
)

func TestCertificateExpiryMetricAndStatus(t *testing.T) {
	g := startGantry(t, setup{tls: true})
	c := client()
	peertest.WaitFor(t, 20*time.Second, "the internal certificate for localhost", func() bool { return g.srv.Certs().HasCert("localhost") })

	_, body := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	m := regexp.MustCompile(`gantry_tls_cert_expiry_seconds\{name="localhost",source="internal"\} (\S+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no expiry gauge for localhost:\n%s", body)
	}
	// The internal CA's leaves live a day.
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 23*3600 || v > 24*3600+60 {
		t.Errorf("expiry gauge %s, want about a day", m[1])
	}

	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	if len(st.Certificates) != 1 || st.Certificates[0].Name != "localhost" || st.Certificates[0].Issuer == "" || st.Certificates[0].NotAfter.IsZero() {
		t.Errorf("/api/status certificates %+v", st.Certificates)
	}
}

// writePair writes a self-signed certificate for name, valid from notBefore to
// notAfter, and, when keyFile is not "", its key.
func writePair(t *testing.T, certFile, keyFile, name string, notBefore, notAfter time.Time) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name + " own CA"}, DNSNames: []string{name},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if keyFile != "" {
		kb, _ := x509.MarshalECPrivateKey(key)
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// certRow is one row of the Certificates panel as the browser shows it.
type certRow struct {
	Class string   `json:"class"`
	Cells []string `json:"cells"`
}

func TestBrowserCertificatesPanel(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	now := time.Now()
	file := func(n string) string { return filepath.Join(dir, n) }
	// near.test is in the last third of its life; bad.test is healthy until
	// its pair is replaced by a broken one.
	writePair(t, file("near.pem"), file("near.key"), "near.test", now.Add(-80*24*time.Hour), now.Add(5*24*time.Hour))
	writePair(t, file("bad.pem"), file("bad.key"), "bad.test", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	var extra string
	for _, n := range []string{"near", "bad"} {
		extra += fmt.Sprintf("\n[[site]]\nhosts = [%q]\nroot = %q\ntls_cert = %q\ntls_key = %q\n", n+".test", dir, file(n+".pem"), file(n+".key"))
	}
	g := startGantry(t, setup{tls: true, extra: extra})
	peertest.WaitFor(t, 20*time.Second, "the internal certificate for localhost", func() bool { return g.srv.Certs().HasCert("localhost") })
	writePair(t, file("bad.pem"), "", "bad.test", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	if err := g.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}

	run(t, ctx, chromedp.Navigate(g.admin+"/"))
	waitJS(t, ctx, "the certificates panel", `!document.getElementById("certs-panel").hidden && document.querySelectorAll("#certs tbody tr").length === 3`)
	rows := eval(t, ctx, chromedp.Evaluate[map[string]certRow](`Object.fromEntries(Array.from(document.querySelectorAll("#certs tbody tr")).map(tr =>
		[tr.dataset.name, {class: tr.className, cells: Array.from(tr.cells).map(td => td.textContent)}]))`))
	for _, tc := range []struct {
		name, class string
		cells       map[int]string // column: text it contains
	}{
		{"localhost", "cert-ok", map[int]string{1: "internal", 2: "gantry", 3: "(in 2", 5: ""}},
		{"near.test", "cert-warn", map[int]string{1: "own", 2: "near.test own CA", 3: "(in 4 d)"}},
		{"bad.test", "cert-bad", map[int]string{1: "own", 3: "(in 59 d)", 5: "private key does not match"}},
	} {
		r, ok := rows[tc.name]
		if !ok {
			t.Errorf("no row for %s: %+v", tc.name, rows)
			continue
		}
		if r.Class != tc.class {
			t.Errorf("%s: class %q, want %q (%q)", tc.name, r.Class, tc.class, r.Cells)
		}
		for col, want := range tc.cells {
			if col >= len(r.Cells) || !strings.Contains(r.Cells[col], want) || (want == "" && r.Cells[col] != "") {
				t.Errorf("%s: cells %q, want column %d to hold %q", tc.name, r.Cells, col, want)
			}
		}
		if len(r.Cells) == 6 && r.Cells[4] == "–" {
			t.Errorf("%s: no last attempt shown: %q", tc.name, r.Cells)
		}
	}
}
