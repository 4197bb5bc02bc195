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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/certs"
	"gantry/internal/config"
	"gantry/internal/peertest"
)

// tlsSite is a server with a plain and a TLS listener.
type tlsSite struct {
	srv     *Server
	plain   string // host:port
	tls     string // host:port
	tlsPort string
	file    string
	storage string
	log     *peertest.LogBuffer
}

func startTLSServer(t *testing.T, text string) *tlsSite {
	t.Helper()
	return startTLSServerWith(t, text, Options{})
}

// startTLSServerWith is startTLSServer with options for the server (its logger
// is the site's).
func startTLSServerWith(t testing.TB, text string, opts Options) *tlsSite {
	t.Helper()
	return startTLSServerServing(t, "", text, opts)
}

// startTLSServerServing is startTLSServerWith with more [server] keys.
func startTLSServerServing(t testing.TB, server, text string, opts Options) *tlsSite {
	t.Helper()
	ts := &tlsSite{storage: t.TempDir(), log: &peertest.LogBuffer{}}
	ts.file = filepath.Join(t.TempDir(), "gantry.toml")
	writeFile(t, ts.file, "[server]\nlisten=[\"127.0.0.1:0\"]\ntls_listen=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n"+server+"[admin]\nlisten=\"off\"\n"+
		"[tls]\nstorage=\""+ts.storage+"\"\nhsts=\"max-age=600\"\n"+text)
	cfg, err := config.Load(ts.file)
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(ts.log, nil))
	ts.srv, err = New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
	})
	ts.plain = ts.srv.Addrs()[0].String()
	ts.tls = ts.srv.TLSAddrs()[0].String()
	_, ts.tlsPort, _ = net.SplitHostPort(ts.tls)
	return ts
}

func rootPool(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no certificate", file)
	}
	return pool
}

// handshake connects to addr with serverName as SNI ("" sends none, as a client
// dialing an IP address does) and returns the verified leaf.
func handshake(t *testing.T, addr, serverName string, roots *x509.CertPool, verifyName string) (*x509.Certificate, error) {
	t.Helper()
	conf := &tls.Config{RootCAs: roots, ServerName: serverName}
	if serverName == "" {
		// Go sends no SNI for an IP address: verify against it ourselves.
		conf.ServerName = verifyName
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func httpsClient(roots *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestHTTPSInternalCA(t *testing.T) {
	py := peertest.Python(t)
	root, cgiDir, appDir := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(root, "a.txt"), "file a")
	b, err := os.ReadFile(filepath.Join("testdata", "env", "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cgiDir, "env.sh"), b, 0o755)
	writeFile(t, filepath.Join(appDir, "scheme_app.py"), `def application(environ, start_response):
    body = environ["wsgi.input"].read().decode()
    out = ("url_scheme=%s\nHTTPS=%s\nSERVER_PORT=%s\nCONTENT_LENGTH=%s\nbody=%s\n" % (environ["wsgi.url_scheme"], environ.get("HTTPS", ""), environ["SERVER_PORT"], environ.get("CONTENT_LENGTH", ""), body)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]
`)
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts=[\"localhost\", \"127.0.0.1\"]\nroot=%q\n"+
		"  [[site.route]]\n  path=\"/cgi-bin/\"\n  cgi=%q\n"+
		"  [[site.route]]\n  path=\"/app/\"\n  wsgi=\"scheme_app:application\"\n  python=%q\n  chdir=%q\n  processes=1\n", root, cgiDir, py, appDir))
	m := ts.srv.Certs()
	peertest.WaitFor(t, 20*time.Second, "internal certificates for localhost and 127.0.0.1", func() bool {
		return m.HasCert("localhost") && m.HasCert("127.0.0.1")
	})

	rootFile := filepath.Join(ts.storage, "ca", "root.pem")
	if m.RootPath() != rootFile {
		t.Errorf("RootPath = %q, want %q", m.RootPath(), rootFile)
	}
	fi, err := os.Stat(filepath.Join(ts.storage, "ca", "root.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root.key: %v, mode %v; want 0600", err, fi)
	}
	roots := rootPool(t, rootFile)

	t.Run("chain for localhost", func(t *testing.T) {
		leaf, err := handshake(t, ts.tls, "localhost", roots, "")
		if err != nil {
			t.Fatal(err)
		}
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 25*time.Hour {
			t.Errorf("leaf lives %v: want short-lived (24h)", life)
		}
	})
	t.Run("no SNI gets the site naming the IP", func(t *testing.T) {
		leaf, err := handshake(t, ts.tls, "", roots, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
			t.Errorf("leaf IPs %v, want 127.0.0.1", leaf.IPAddresses)
		}
	})
	t.Run("unknown name refused", func(t *testing.T) {
		if _, err := handshake(t, ts.tls, "other.example", roots, ""); err == nil {
			t.Error("handshake for a name no site has succeeded")
		}
	})

	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			c := httpsClient(roots, h2)
			resp, err := c.Get("https://localhost:" + ts.tlsPort + "/a.txt")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantProto := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
			if resp.Proto != wantProto || string(body) != "file a" || resp.Header.Get("Strict-Transport-Security") != "max-age=600" {
				t.Errorf("got %s %q, HSTS %q; want %s, \"file a\", max-age=600", resp.Proto, body, resp.Header.Get("Strict-Transport-Security"), wantProto)
			}
			// What the backends see.
			for _, path := range []string{"/cgi-bin/env.sh", "/app/x"} {
				resp, err := c.Get("https://localhost:" + ts.tlsPort + path)
				if err != nil {
					t.Fatal(err)
				}
				env, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				for _, want := range []string{"HTTPS=on\n", "SERVER_PORT=" + ts.tlsPort + "\n"} {
					if !strings.Contains(string(env), want) {
						t.Errorf("%s over TLS: environment lacks %q:\n%s", path, want, env)
					}
				}
				want := "REQUEST_SCHEME=https\n"
				if path == "/app/x" {
					want = "url_scheme=https\n"
				}
				if !strings.Contains(string(env), want) {
					t.Errorf("%s: environment lacks %q:\n%s", path, want, env)
				}
			}
			// A body of unknown length (HTTP/2 DATA frames, or HTTP/1.1
			// chunks) reaches the application whole, with its length.
			sent := strings.Repeat("a body of unknown length\n", 4000)
			resp, err = c.Post("https://localhost:"+ts.tlsPort+"/app/x", "text/plain", struct{ io.Reader }{strings.NewReader(sent)})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("CONTENT_LENGTH=%d\nbody=%s\n", len(sent), sent); resp.Proto != wantProto || !strings.HasSuffix(string(got), want) {
				t.Errorf("%s POST: the application saw\n%.300s", resp.Proto, got)
			}
		})
	}

	t.Run("plain HTTP redirects, fast path included", func(t *testing.T) {
		c := httpsClient(roots, false)
		for _, host := range []string{"localhost", "localhost:" + strings.Split(ts.plain, ":")[1]} {
			req, _ := http.NewRequest("GET", "http://"+ts.plain+"/a.txt?x=1", nil)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := "https://localhost:" + ts.tlsPort + "/a.txt?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
				t.Errorf("Host %s: %d %q, want 308 %q", host, resp.StatusCode, resp.Header.Get("Location"), want)
			}
			if resp.Header.Get("Strict-Transport-Security") != "" {
				t.Error("HSTS sent over plain HTTP")
			}
		}
		// A host no site names is not redirected anywhere.
		req, _ := http.NewRequest("GET", "http://"+ts.plain+"/a.txt", nil)
		req.Host = "evil.example"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusPermanentRedirect {
			t.Errorf("redirected a host no site names to %q", resp.Header.Get("Location"))
		}
	})
}

func TestInternalCAReusedAfterRestart(t *testing.T) {
	root := t.TempDir()
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts=[\"localhost\"]\nroot=%q\n", root))
	peertest.WaitFor(t, 20*time.Second, "a certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
	rootPEM, _ := os.ReadFile(filepath.Join(ts.storage, "ca", "root.pem"))
	leaf1, err := handshake(t, ts.tls, "localhost", rootPool(t, filepath.Join(ts.storage, "ca", "root.pem")), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)

	cfg, err := config.Load(ts.file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	peertest.WaitFor(t, 20*time.Second, "the stored certificate for localhost", func() bool { return srv.Certs().HasCert("localhost") })
	rootPEM2, _ := os.ReadFile(filepath.Join(ts.storage, "ca", "root.pem"))
	if string(rootPEM) != string(rootPEM2) {
		t.Fatal("the root was made again on restart")
	}
	leaf2, err := handshake(t, srv.TLSAddrs()[0].String(), "localhost", rootPool(t, filepath.Join(ts.storage, "ca", "root.pem")), "")
	if err != nil {
		t.Fatal(err)
	}
	if leaf1.SerialNumber.Cmp(leaf2.SerialNumber) != 0 {
		t.Errorf("a new leaf (serial %v) was issued on restart instead of reusing %v", leaf2.SerialNumber, leaf1.SerialNumber)
	}
}

// writePair writes a self-signed certificate for names and its key.
func writePair(t *testing.T, certFile, keyFile string, names ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	if keyFile != "" {
		writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestOwnCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "own.pem"), filepath.Join(dir, "own.key")
	first := writePair(t, certFile, keyFile, "own.test")
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts=[\"own.test\"]\nroot=%q\ntls_cert=%q\ntls_key=%q\n", dir, certFile, keyFile))
	serial := func(roots *x509.Certificate) *big.Int {
		pool := x509.NewCertPool()
		pool.AddCert(roots)
		leaf, err := handshake(t, ts.tls, "own.test", pool, "")
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber
	}
	if got := serial(first); got.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("serves serial %v, want %v", got, first.SerialNumber)
	}

	second := writePair(t, certFile, keyFile, "own.test")
	if err := ts.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := serial(second); got.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after reload serves serial %v, want the new %v", got, second.SerialNumber)
	}

	// A certificate whose key is not in the key file: the old pair keeps serving.
	writePair(t, certFile, "", "own.test")
	if err := ts.srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := serial(second); got.Cmp(second.SerialNumber) != 0 {
		t.Fatalf("after a bad pair serves serial %v, want the previous %v", got, second.SerialNumber)
	}
	if !strings.Contains(ts.log.String(), "own certificate not loaded") || !strings.Contains(ts.log.String(), "private key does not match") {
		t.Errorf("the bad pair was not logged with its cause:\n%s", ts.log.String())
	}
	var st certs.CertStatus
	for _, s := range ts.srv.Certs().Status() {
		if s.Source == config.TLSOwn {
			st = s
		}
	}
	if st.Name != "own.test" || st.LastError == "" || !st.NotAfter.Equal(second.NotAfter) {
		t.Errorf("status %+v: want own.test, the error, and the kept certificate's expiry", st)
	}

	// At start, a bad pair is an error.
	cfg, err := config.Load(ts.file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs.New(cfg, certs.Options{}); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("certs.New with a bad pair: %v", err)
	}
}
