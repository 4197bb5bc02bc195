package httpsensor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// addrConn is a connection that has only its addresses: what ClientHello reads
// of hello.Conn.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func names(list ...string) KnownName {
	return func(n string) bool { return slices.Contains(list, n) }
}

func TestClientHello(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netipAddrPort(t, s)) }
	cases := []struct {
		name  string
		sni   string
		local string
		known KnownName
		want  Verdict
	}{
		{"a site's name", "example.com", "203.0.113.5:443", names("example.com"), Verdict{}},
		{"a site's name in capitals with a trailing dot", "EXAMPLE.com.", "203.0.113.5:443", names("example.com"), Verdict{}},
		{"no server name", "", "203.0.113.5:443", names("example.com"), Verdict{Probe, "tls-no-sni"}},
		{"no server name, a site names the address dialed", "", "203.0.113.5:443", names("example.com", "203.0.113.5"), Verdict{}},
		{"no server name, a site names another address", "", "[2001:db8::1]:443", names("203.0.113.5"), Verdict{Probe, "tls-no-sni"}},
		{"no server name over IPv6, a site names it", "", "[2001:db8::1]:443", names("2001:db8::1"), Verdict{}},
		{"a name no site answers to", "admin.example.net", "203.0.113.5:443", names("example.com"), Verdict{Probe, "tls-unknown-sni"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			c := addrConn{local: tcp(tc.local), remote: tcp("198.51.100.7:40000")}
			got := s.ClientHello(&tls.ClientHelloInfo{ServerName: tc.sni, Conn: c}, tc.known)
			if got != tc.want {
				t.Fatalf("verdict %+v, want %+v", got, tc.want)
			}
			wantTotal := uint64(0)
			if tc.want.Rule != "" {
				wantTotal = 1
				snap := s.Snapshot(10)
				if len(snap.Sources) != 1 || snap.Sources[0].Source != "198.51.100.7" || snap.Sources[0].Rules[tc.want.Rule] != 1 {
					t.Errorf("sources %+v, want 198.51.100.7 with one %s", snap.Sources, tc.want.Rule)
				}
			}
			if s.Total() != wantTotal || s.CategoryTotal(Probe) != wantTotal {
				t.Errorf("total %d, probes %d, want %d", s.Total(), s.CategoryTotal(Probe), wantTotal)
			}
		})
	}
}

func TestTLSHandshakeFailedIgnoresServerStop(t *testing.T) {
	s := New(Options{})
	for _, err := range []error{nil, net.ErrClosed, context.Canceled} {
		if v := s.TLSHandshakeFailed(nil, err); v != (Verdict{}) {
			t.Errorf("%v: verdict %+v, want none", err, v)
		}
	}
	if s.Total() != 0 {
		t.Errorf("%d events recorded for the server's own stop", s.Total())
	}
}

func TestTLSRulesWithoutTLSRules(t *testing.T) {
	rules := slices.DeleteFunc(DefaultRules(), func(r Rule) bool { return r.Field == "tls" })
	s := New(Options{Rules: rules})
	c := addrConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 1}}
	if v := s.ClientHello(&tls.ClientHelloInfo{Conn: c}, names()); v != (Verdict{}) {
		t.Errorf("verdict %+v from a rule set without tls rules", v)
	}
	if v := s.TLSHandshakeFailed(c, io.ErrUnexpectedEOF); v != (Verdict{}) {
		t.Errorf("verdict %+v from a rule set without tls rules", v)
	}
}

// tlsServer is a TLS listener wired to a sensor as gantry's TLS listeners are:
// the ClientHello through GetConfigForClient, a failed handshake afterwards, one
// event per connection. Each handled connection is reported on handled.
func tlsServer(t *testing.T, s *Sensor, known KnownName) (addr string, pool *x509.CertPool, handled <-chan struct{}) {
	t.Helper()
	cert, pool := localhostCert(t)
	base := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { done <- struct{}{} }()
				defer c.Close()
				tagged := false
				conf := base.Clone()
				conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					tagged = s.ClientHello(h, known) != Verdict{}
					return nil, nil
				}
				tc := tls.Server(c, conf)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err != nil {
					if !tagged {
						s.TLSHandshakeFailed(c, err)
					}
					return
				}
				io.WriteString(tc, "hello\n")
			}()
		}
	}()
	return ln.Addr().String(), pool, done
}

func localhostCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Real handshakes through crypto/tls: what a browser does is legit, what a
// scanner does on 443 is tagged, once per connection.
func TestTLSHandshakes(t *testing.T) {
	tlsClient := func(cfg *tls.Config) func(t *testing.T, addr string, pool *x509.CertPool) {
		return func(t *testing.T, addr string, pool *x509.CertPool) {
			c := cfg.Clone()
			if c.ServerName == "localhost" {
				c.RootCAs = pool
			} else {
				c.InsecureSkipVerify = true // a scanner takes any certificate
			}
			d := &tls.Dialer{Config: c, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
			conn, err := d.DialContext(context.Background(), "tcp", addr)
			if err == nil {
				io.Copy(io.Discard, conn)
				conn.Close()
			}
		}
	}
	cases := []struct {
		name   string
		known  KnownName
		client func(t *testing.T, addr string, pool *x509.CertPool)
		rule   string
		target string // in the recorded event
	}{
		{"browser with a site's name", names("localhost"), tlsClient(&tls.Config{ServerName: "localhost"}), "", ""},
		{"ip-only handshake", names("localhost"), tlsClient(&tls.Config{}), "tls-no-sni", "(no server name)"},
		{"ip-only handshake, a site names the ip", names("localhost", "127.0.0.1"), tlsClient(&tls.Config{}), "", ""},
		{"unknown server name", names("localhost"), tlsClient(&tls.Config{ServerName: "scan.example"}), "tls-unknown-sni", `"scan.example"`},
		{"plain http to the tls port", names("localhost"), func(t *testing.T, addr string, _ *x509.CertPool) {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
			io.Copy(io.Discard, c)
		}, "tls-handshake-failed", "does not look like a TLS handshake"},
		{"only tls 1.0 offered", names("localhost"),
			tlsClient(&tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}),
			"tls-handshake-failed", "unsupported versions"},
		{"only tls 1.0 offered without a name: one event", names("localhost"),
			tlsClient(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10, InsecureSkipVerify: true}),
			"tls-no-sni", "(no server name)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			addr, pool, handled := tlsServer(t, s, tc.known)
			tc.client(t, addr, pool)
			<-handled
			var want uint64
			if tc.rule != "" {
				want = 1
			}
			if s.Total() != want {
				t.Fatalf("%d events, want %d: %+v", s.Total(), want, s.Snapshot(5).Recent)
			}
			for _, rc := range s.Counts() {
				if rc.Name == tc.rule && rc.Count != 1 || rc.Name != tc.rule && rc.Count != 0 {
					t.Errorf("rule %s counted %d", rc.Name, rc.Count)
				}
			}
			if tc.rule == "" {
				return
			}
			recent := s.Snapshot(5).Recent
			if len(recent) != 1 || recent[0].Source != "127.0.0.1" || recent[0].Rule != tc.rule || !strings.Contains(recent[0].Target, tc.target) {
				t.Errorf("events %+v, want one %s from 127.0.0.1 with %q", recent, tc.rule, tc.target)
			}
		})
	}
}

func netipAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
