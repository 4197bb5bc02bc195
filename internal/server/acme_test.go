package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/certs"
	"gantry/internal/config"
	"gantry/internal/peertest"
)

// pebble is Let's Encrypt's test ACME server. It validates every challenge for
// real: pebble-challtestsrv's mock DNS resolves every name to 127.0.0.1, and
// pebble's validator dials the ports gantry's listeners take (gantryHTTP and
// gantryTLS, reserved here so that pebble's configuration can name them).
type pebble struct {
	bin        string
	dir        string
	addr       string // ACME listener
	mgmt       string // management listener (its roots)
	dns        string // challtestsrv's mock DNS
	rootsFile  string // the self-signed certificate of pebble's own HTTPS, for ca_root
	gantryHTTP string // where gantry's plain listener goes (HTTP-01)
	gantryTLS  string // where gantry's TLS listener goes (TLS-ALPN-01)
	log        *peertest.LogBuffer
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func newPebble(t *testing.T) *pebble {
	t.Helper()
	p := &pebble{bin: peertest.Binary(t, "pebble"), dir: t.TempDir(), addr: peertest.FreeAddr(t), mgmt: peertest.FreeAddr(t),
		gantryHTTP: peertest.FreeAddr(t), gantryTLS: peertest.FreeAddr(t), log: &peertest.LogBuffer{}}
	p.startDNS(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test listener"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	p.rootsFile = filepath.Join(p.dir, "cert.pem")
	writeFile(t, p.rootsFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(p.dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	writeFile(t, filepath.Join(p.dir, "config.json"), fmt.Sprintf(`{"pebble": {"listenAddress": %q, "managementListenAddress": %q,
  "certificate": %q, "privateKey": %q, "httpPort": %s, "tlsPort": %s, "ocspResponderURL": "", "externalAccountBindingRequired": false}}`,
		p.addr, p.mgmt, p.rootsFile, filepath.Join(p.dir, "key.pem"), port(p.gantryHTTP), port(p.gantryTLS)))
	return p
}

// startDNS runs pebble-challtestsrv as a mock DNS server only: A queries get
// 127.0.0.1, AAAA queries nothing (gantry listens on 127.0.0.1).
func (p *pebble) startDNS(t *testing.T) {
	t.Helper()
	p.dns = peertest.FreeAddr(t)
	bin := peertest.Binary(t, "pebble-challtestsrv")
	cmd := exec.Command(bin, "-dns01", p.dns, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", peertest.FreeAddr(t), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, p.dns)
	}}
	peertest.WaitFor(t, 20*time.Second, "the mock DNS server", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		addrs, err := r.LookupHost(ctx, "www.example.org")
		return err == nil && len(addrs) == 1 && addrs[0] == "127.0.0.1"
	})
}

// start runs pebble until the test ends and waits for its directory.
func (p *pebble) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.bin, "-config", filepath.Join(p.dir, "config.json"), "-dnsserver", p.dns)
	// Every order validates anew: no authorization reuse.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	c := p.client(t)
	peertest.WaitFor(t, 20*time.Second, "pebble's directory", func() bool {
		resp, err := c.Get("https://" + p.addr + "/dir")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (p *pebble) client(t *testing.T) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rootPool(t, p.rootsFile)}}}
}

// issuerRoots is the root pebble signs with (made anew at each pebble start).
func (p *pebble) issuerRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client(t).Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root: %s", b)
	}
	return pool
}

// startACMEServer runs gantry with one ACME site (www.example.org) on storage,
// its listeners on the ports pebble validates challenges on.
func startACMEServer(t *testing.T, p *pebble, storage string, tune func(*certs.Options)) *tlsSite {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "file a")
	ts := &tlsSite{storage: storage, log: &peertest.LogBuffer{}}
	ts.file = filepath.Join(t.TempDir(), "gantry.toml")
	writeFile(t, ts.file, fmt.Sprintf("[server]\nlisten=[%q]\ntls_listen=[%q]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n"+
		"[tls]\nstorage=%q\nca=\"https://%s/dir\"\nca_root=%q\nemail=\"test@example.org\"\n[[site]]\nhosts=[\"www.example.org\"]\nroot=%q\n",
		p.gantryHTTP, p.gantryTLS, storage, p.addr, p.rootsFile, root))
	cfg, err := config.Load(ts.file)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, err = New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(ts.log, nil)), CertOptions: tune})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.Serve()
	t.Cleanup(func() { ts.stop() })
	ts.plain = ts.srv.Addrs()[0].String()
	ts.tls = ts.srv.TLSAddrs()[0].String()
	_, ts.tlsPort, _ = net.SplitHostPort(ts.tls)
	return ts
}

func (ts *tlsSite) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
}

func (ts *tlsSite) waitCert(t *testing.T, name string) {
	t.Helper()
	peertest.WaitFor(t, 60*time.Second, "a certificate for "+name, func() bool { return ts.srv.Certs().HasCert(name) })
}

func TestACMEIssueReuseRenew(t *testing.T) {
	p := newPebble(t)
	p.start(t)
	storage := t.TempDir()
	roots := p.issuerRoots(t)

	ts := startACMEServer(t, p, storage, nil)
	ts.waitCert(t, "www.example.org")
	first, err := handshake(t, ts.tls, "www.example.org", roots, "")
	if err != nil {
		t.Fatal(err)
	}
	st := ts.srv.Certs().Status()
	if len(st) != 1 || st[0].Name != "www.example.org" || st[0].Source != "acme" || !strings.Contains(st[0].Issuer, "Pebble") ||
		!st[0].NotAfter.Equal(first.NotAfter) || st[0].LastAttempt.IsZero() || st[0].LastError != "" {
		t.Errorf("status %+v", st)
	}
	t.Run("HTTP/2 with the ACME certificate", func(t *testing.T) {
		// The listener also offers acme-tls/1: a browser must still get h2.
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, ts.tls)
			}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://www.example.org:" + ts.tlsPort + "/a.txt")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" || string(body) != "file a" {
			alpn := ""
			if resp.TLS != nil {
				alpn = resp.TLS.NegotiatedProtocol
			}
			t.Errorf("got %s, ALPN %q, body %q; want HTTP/2.0, h2, \"file a\"", resp.Proto, alpn, body)
		}
	})
	// The account and certificate are under storage.
	if m, _ := filepath.Glob(filepath.Join(storage, "certificates", "*", "www.example.org", "www.example.org.crt")); len(m) != 1 {
		t.Errorf("certificate not stored under %s: %v", storage, m)
	}
	ts.stop()

	t.Run("restart reuses the stored certificate", func(t *testing.T) {
		ts := startACMEServer(t, p, storage, nil)
		ts.waitCert(t, "www.example.org")
		again, err := handshake(t, ts.tls, "www.example.org", roots, "")
		if err != nil {
			t.Fatal(err)
		}
		if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Errorf("restart issued serial %v; want the stored %v", again.SerialNumber, first.SerialNumber)
		}
		ts.stop()
	})
	t.Run("a certificate in its renewal window is renewed", func(t *testing.T) {
		// Ratio 1: the whole lifetime is the renewal window, so the stored
		// certificate counts as near expiry.
		ts := startACMEServer(t, p, storage, func(o *certs.Options) { o.RenewalWindowRatio = 1 })
		peertest.WaitFor(t, 60*time.Second, "a renewed certificate", func() bool {
			leaf, err := handshake(t, ts.tls, "www.example.org", roots, "")
			return err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0
		})
	})
}

func TestACMEServerDownAtStart(t *testing.T) {
	p := newPebble(t)
	ts := startACMEServer(t, p, t.TempDir(), func(o *certs.Options) { o.RetryBase, o.RetryMax = 50*time.Millisecond, 500*time.Millisecond })
	m := ts.srv.Certs()
	peertest.WaitFor(t, 20*time.Second, "a failed attempt in the status", func() bool {
		st := m.Status()
		return len(st) == 1 && st[0].LastError != ""
	})
	// HTTP keeps serving the site meanwhile, without a redirect to nowhere.
	req, _ := http.NewRequest("GET", "http://"+ts.plain+"/a.txt", nil)
	req.Host = "www.example.org"
	resp, err := httpsClient(nil, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "file a" {
		t.Errorf("plain HTTP while the CA is down: %d %q", resp.StatusCode, body)
	}
	if _, err := handshake(t, ts.tls, "www.example.org", x509.NewCertPool(), ""); err == nil {
		t.Error("handshake succeeded without a certificate")
	}

	p.start(t)
	ts.waitCert(t, "www.example.org")
	if _, err := handshake(t, ts.tls, "www.example.org", p.issuerRoots(t), ""); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st[0].LastError != "" {
		t.Errorf("error kept after success: %q", st[0].LastError)
	}
	resp, err = httpsClient(nil, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("plain HTTP once the certificate is in: %d, want 308", resp.StatusCode)
	}
}

// TestACMEChallenges has pebble validate each challenge type against gantry's
// own listeners: HTTP-01 on the plain one, TLS-ALPN-01 on the TLS one.
func TestACMEChallenges(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune func(*certs.Options)
		// what pebble and gantry log when the challenge is validated
		pebbleLog func(p *pebble) string
		gantryLog []string
	}{
		{"http-01", func(o *certs.Options) { o.NoTLSALPNChallenge = true },
			func(p *pebble) string {
				return "Attempting to validate w/ HTTP: http://www.example.org:" + port(p.gantryHTTP) + "/.well-known/acme-challenge/"
			},
			[]string{"served key authentication", "challenge=http-01"}},
		{"tls-alpn-01", func(o *certs.Options) { o.NoHTTPChallenge = true },
			func(*pebble) string { return "set VALID by completed challenge" },
			[]string{"served key authentication certificate", "challenge=tls-alpn-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPebble(t)
			p.start(t)
			ts := startACMEServer(t, p, t.TempDir(), tc.tune)
			ts.waitCert(t, "www.example.org")
			if _, err := handshake(t, ts.tls, "www.example.org", p.issuerRoots(t), ""); err != nil {
				t.Fatal(err)
			}
			if want := tc.pebbleLog(p); !strings.Contains(p.log.String(), want) {
				t.Errorf("pebble's log lacks %q:\n%s", want, p.log.String())
			}
			for _, want := range tc.gantryLog {
				if !strings.Contains(ts.log.String(), want) {
					t.Errorf("gantry's log lacks %q:\n%s", want, ts.log.String())
				}
			}
		})
	}

	t.Run("unanswered challenge fails", func(t *testing.T) {
		// pebble dials the reserved plain port, but gantry listens elsewhere:
		// the validation is real, so no certificate.
		p := newPebble(t)
		p.start(t)
		elsewhere := *p
		elsewhere.gantryHTTP = peertest.FreeAddr(t)
		ts := startACMEServer(t, &elsewhere, t.TempDir(), func(o *certs.Options) { o.NoTLSALPNChallenge = true; o.RetryBase = time.Hour })
		peertest.WaitFor(t, 30*time.Second, "a failed attempt in the status", func() bool {
			st := ts.srv.Certs().Status()
			return len(st) == 1 && st[0].LastError != ""
		})
		if st := ts.srv.Certs().Status(); ts.srv.Certs().HasCert("www.example.org") || !strings.Contains(st[0].LastError, "connection refused") {
			t.Errorf("status %+v: want no certificate and pebble's connection refused", st)
		}
	})
}
