package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"gantry/internal/peertest"
	"gantry/internal/telescope/httpsensor"
)

// HTTP/3 is served on the UDP port of each TLS listener, with the same sites and
// certificates, and HTTP/1.1 and HTTP/2 responses over TLS announce it; plain
// HTTP ones do not. A shutdown frees the UDP port.
func TestHTTP3OnTLSListener(t *testing.T) {
	www := t.TempDir()
	writeFile(t, filepath.Join(www, "a.txt"), "over quic\n")
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts = [\"localhost\", \"127.0.0.1\"]\nroot = %q\n", www))
	peertest.WaitFor(t, 20*time.Second, "the certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
	pool := rootPool(t, filepath.Join(ts.storage, "ca", "root.pem"))

	resp, err := httpsClient(pool, true).Get("https://localhost:" + ts.tlsPort + "/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := `h3=":` + ts.tlsPort + `"; ma=86400`; resp.Header.Get("Alt-Svc") != want {
		t.Errorf("HTTPS response Alt-Svc = %q, want %q", resp.Header.Get("Alt-Svc"), want)
	}
	// Once 127.0.0.1 has its certificate too the answer is a redirect: either
	// way it must not announce HTTP/3.
	plain, err := httpsClient(pool, false).Get("http://" + ts.plain + "/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if v := plain.Header.Get("Alt-Svc"); v != "" {
		t.Errorf("plain HTTP response announces %q", v)
	}

	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err = c.Get("https://localhost:" + ts.tlsPort + "/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 3 || resp.StatusCode != 200 || string(body) != "over quic\n" {
		t.Fatalf("HTTP/3: %s %s %q", resp.Proto, resp.Status, body)
	}
	if v := resp.Header.Get("Strict-Transport-Security"); v != "max-age=600" {
		t.Errorf("HTTP/3 response HSTS = %q: the TLS listeners' handler must serve it", v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ts.tls)
	if err != nil {
		t.Fatalf("UDP port still held after shutdown: %v", err)
	}
	pc.Close()
}

// sensorObserver shows a real HTTP sensor the TLS handshakes, as gantry serve does.
type sensorObserver struct{ s *httpsensor.Sensor }

func (o sensorObserver) TLSHello(h *tls.ClientHelloInfo, known func(string) bool) {
	o.s.ClientHello(h, known)
}
func (o sensorObserver) TLSFailed(c net.Conn, err error) { o.s.TLSHandshakeFailed(c, err) }

// The telescope sees what knocks on the TLS port: a handshake naming no server or
// one no site answers to, and bytes that are no handshake at all; a browser
// naming a site, and an old client naming one, are not unsolicited.
func TestTLSHandshakesReachTheTelescope(t *testing.T) {
	sensor := httpsensor.New(httpsensor.Options{})
	www := t.TempDir()
	ts := startTLSServerWith(t, fmt.Sprintf("[[site]]\nhosts = [\"localhost\"]\nroot = %q\n", www), Options{TLSObserver: sensorObserver{sensor}})
	peertest.WaitFor(t, 20*time.Second, "the certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
	pool := rootPool(t, filepath.Join(ts.storage, "ca", "root.pem"))
	dial := func(cfg *tls.Config) error {
		d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
		c, err := d.DialContext(context.Background(), "tcp", ts.tls)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{ServerName: "localhost", RootCAs: pool}); err != nil {
		t.Fatalf("a browser naming the site: %v", err)
	}
	dial(&tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
	dial(&tls.Config{InsecureSkipVerify: true})
	dial(&tls.Config{ServerName: "scan.example", InsecureSkipVerify: true})
	c, err := net.DialTimeout("tcp", ts.tls, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()

	want := map[string]uint64{"tls-no-sni": 1, "tls-unknown-sni": 1, "tls-handshake-failed": 1}
	peertest.WaitFor(t, 10*time.Second, "three TLS events", func() bool { return sensor.Total() >= 3 })
	for _, rc := range sensor.Counts() {
		if rc.Count != want[rc.Name] {
			t.Errorf("rule %s counted %d, want %d", rc.Name, rc.Count, want[rc.Name])
		}
	}
	var b strings.Builder
	for _, e := range sensor.Snapshot(10).Recent {
		fmt.Fprintf(&b, "%s %s %s\n", e.Source, e.Rule, e.Target)
	}
	if sensor.Total() != 3 {
		t.Errorf("%d events, want 3:\n%s", sensor.Total(), b.String())
	}
}
