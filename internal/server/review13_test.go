package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

// startTLSServerConf is startTLSServer with extra [server] keys.
func startTLSServerConf(t *testing.T, serverKeys, text string) *tlsSite {
	t.Helper()
	ts := &tlsSite{storage: t.TempDir(), log: &peertest.LogBuffer{}}
	ts.file = filepath.Join(t.TempDir(), "gantry.toml")
	writeFile(t, ts.file, "[server]\nlisten=[\"127.0.0.1:0\"]\ntls_listen=[\"127.0.0.1:0\"]\naccess_log=\"off\"\n"+serverKeys+
		"[admin]\nlisten=\"off\"\n[tls]\nstorage=\""+ts.storage+"\"\n"+text)
	cfg, err := config.Load(ts.file)
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, err = New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(ts.log, nil))})
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

// A client dialing the IP address over HTTP/3 sends no SNI, as over TCP: it must
// get the certificate of the site whose hosts name that address (issue 13 §2),
// not a failed handshake.
func TestReviewHTTP3NoSNIGetsIPSite(t *testing.T) {
	www := t.TempDir()
	writeFile(t, filepath.Join(www, "a.txt"), "by address\n")
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts = [\"127.0.0.1\"]\nroot = %q\n", www))
	peertest.WaitFor(t, 20*time.Second, "the certificate for 127.0.0.1", func() bool { return ts.srv.Certs().HasCert("127.0.0.1") })
	pool := rootPool(t, filepath.Join(ts.storage, "ca", "root.pem"))

	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://127.0.0.1:" + ts.tlsPort + "/a.txt")
	if err != nil {
		t.Fatalf("HTTP/3 to the site's IP address without SNI: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "by address\n" {
		t.Fatalf("HTTP/3 by address: %s %q", resp.Status, body)
	}
}

// An HTTP/3 request stream whose HEADERS frame never completes must be ended
// after [server] read_header_timeout, as a slow TCP client's connection is: a
// client that keeps its QUIC connection alive with PINGs otherwise holds the
// stream, its goroutine and the connection for ever (slowloris over QUIC).
func TestReviewHTTP3SlowHeadersTimeOut(t *testing.T) {
	www := t.TempDir()
	ts := startTLSServerConf(t, "read_header_timeout=\"300ms\"\n", fmt.Sprintf("[[site]]\nhosts = [\"localhost\"]\nroot = %q\n", www))
	peertest.WaitFor(t, 20*time.Second, "the certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
	pool := rootPool(t, filepath.Join(ts.storage, "ca", "root.pem"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, ts.tls, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}},
		&quic.Config{KeepAlivePeriod: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A HEADERS frame (type 0x01) announcing 32 bytes, and 2 of them.
	if _, err := str.Write([]byte{0x01, 0x20, 0x00, 0x00}); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := str.Read(make([]byte, 1))
		ended <- err
	}()
	var got error
	peertest.WaitFor(t, 8*time.Second, "the server to end a stream stuck in its headers", func() bool {
		select {
		case got = <-ended:
			return true
		default:
			return false
		}
	})
	if got == nil {
		t.Fatal("read on a stuck stream returned data")
	}
}

// The plain listener refuses, through the framing guard, a head whose framing
// net/http reads differently from a proxy in front (Transfer-Encoding on
// HTTP/1.0, Content-Length with Transfer-Encoding). HTTPS/1.1 must refuse them
// too: a CDN re-encrypting to gantry's TLS port is the usual front proxy, and
// without the guard the body of the first request is served as a second one.
func TestReviewHTTPSFramingRefused(t *testing.T) {
	www := t.TempDir()
	writeFile(t, filepath.Join(www, "index.html"), "index\n")
	writeFile(t, filepath.Join(www, "smuggled"), "smuggled\n")
	ts := startTLSServer(t, fmt.Sprintf("[[site]]\nhosts = [\"localhost\", \"127.0.0.1\"]\nroot = %q\n", www))
	peertest.WaitFor(t, 20*time.Second, "the certificate for localhost", func() bool { return ts.srv.Certs().HasCert("localhost") })
	pool := rootPool(t, filepath.Join(ts.storage, "ca", "root.pem"))

	smuggled := "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"
	chunk := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)
	for _, tc := range []struct{ name, req string }{
		{"transfer-encoding on HTTP/1.0", "POST / HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk},
		{"content-length with transfer-encoding", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, addr := range []struct {
				name string
				dial func() (net.Conn, error)
			}{
				{"plain", func() (net.Conn, error) { return net.DialTimeout("tcp", ts.plain, 5*time.Second) }},
				{"tls", func() (net.Conn, error) {
					return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ts.tls,
						&tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
				}},
			} {
				c, err := addr.dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, tc.req); err != nil {
					t.Fatal(err)
				}
				all, _ := io.ReadAll(c)
				br := bufio.NewReader(strings.NewReader(string(all)))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", addr.name, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: first response %s, want 400", addr.name, resp.Status)
				}
				if strings.Contains(string(all), "smuggled\n") {
					t.Errorf("%s: the request inside the body was served:\n%s", addr.name, all)
				}
			}
		})
	}
}
