package cli

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"gantry/internal/peertest"
)

// heldSockets are the sockets a .socket unit with ListenStream=80,
// ListenStream=443 and ListenDatagram=443 holds, on loopback ports.
type heldSockets struct {
	http, tls string     // the stream sockets' addresses
	files     []*os.File // http, tls, then the UDP socket on tls's port
}

func holdSockets(t *testing.T) heldSockets {
	t.Helper()
	var hs heldSockets
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hs.http = ln.Addr().String()
	f, _ := ln.(*net.TCPListener).File()
	hs.files = append(hs.files, f)
	// the UDP port of a free TCP port may be taken: try a few
	for range 20 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", tl.Addr().String())
		if err != nil {
			tl.Close()
			continue
		}
		t.Cleanup(func() { tl.Close(); pc.Close() })
		hs.tls = tl.Addr().String()
		tf, _ := tl.(*net.TCPListener).File()
		uf, _ := pc.(*net.UDPConn).File()
		hs.files = append(hs.files, tf, uf)
		break
	}
	if hs.tls == "" {
		t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	}
	t.Cleanup(func() {
		for _, f := range hs.files {
			f.Close()
		}
	})
	return hs
}

// waitHTTPS waits for gantry's internal CA in storage and for url to answer with
// a certificate it signed, and returns a pool trusting it.
func waitHTTPS(t *testing.T, storage, url string, log fmt.Stringer) *x509.CertPool {
	t.Helper()
	root := filepath.Join(storage, "ca", "root.pem")
	peertest.WaitFor(t, 30*time.Second, "the internal root "+root, func() bool { return fileExists(root) })
	pem, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", root)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	peertest.WaitFor(t, 30*time.Second, "HTTPS on "+url, func() bool {
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return pool
}

// listeningSockets returns the inodes of the listening TCP sockets and unconnected
// UDP sockets that process pid holds.
func listeningSockets(t *testing.T, pid int) map[uint64]bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	held := map[uint64]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
			held[n] = true
		}
	}
	out := map[uint64]bool{}
	// st 0A is TCP_LISTEN; a UDP socket in 07 (TCP_CLOSE) is unconnected: bound to
	// serve, not a resolver's query socket
	for table, state := range map[string]string{"tcp": "0A", "tcp6": "0A", "udp": "07", "udp6": "07"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		lines := bufio.NewScanner(f)
		lines.Scan() // header
		for lines.Scan() {
			fields := strings.Fields(lines.Text())
			if len(fields) < 10 || fields[3] != state {
				continue
			}
			if n, _ := strconv.ParseUint(fields[9], 10, 64); held[n] {
				out[n] = true
			}
		}
		f.Close()
	}
	return out
}

func inode(t *testing.T, f *os.File) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// HTTPS and HTTP/3 are served on the sockets the service manager passes, matched to
// [server] listen and tls_listen by address or by name, and gantry binds no socket
// of its own: with the sockets held, a restart refuses no HTTPS connection either.
func TestSocketActivationHTTPS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
	}{
		// one unit, FileDescriptorName=listen for all three: the addresses decide
		{name: "one unit, one name", names: []string{"listen", "listen", "listen"}},
		// the package's units: gantry.socket and gantry-https.socket
		{name: "a unit for HTTPS", names: []string{"listen", "tls_listen", "tls_listen"}},
		// unnamed (systemd names them after the unit)
		{name: "by address", names: []string{"gantry.socket", "gantry.socket", "gantry.socket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "a.txt"), []byte("file a"), 0o644)
			hs := holdSockets(t)
			storage := filepath.Join(dir, "tls")
			conf := filepath.Join(dir, "gantry.toml")
			os.WriteFile(conf, []byte(fmt.Sprintf("[server]\nlisten=[%q]\ntls_listen=[%q]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[tls]\nstorage=%q\n[[site]]\nhosts=[\"localhost\"]\nroot=%q\n",
				hs.http, hs.tls, storage, dir)), 0o644)
			notify := newNotifySocket(t)
			g := startActivated(t, hs.files, tc.names, notify, "serve", "-c", conf)
			notify.expect(t, "READY=1", g.log)

			_, port, _ := net.SplitHostPort(hs.tls)
			url := "https://localhost:" + port + "/a.txt"
			pool := waitHTTPS(t, storage, url, g.log)
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			h3 := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			defer h3.Close()
			for _, c := range []struct {
				proto int
				rt    http.RoundTripper
			}{{2, tr}, {3, h3}} {
				resp, err := (&http.Client{Transport: c.rt, Timeout: 10 * time.Second}).Get(url)
				if err != nil {
					t.Fatalf("HTTP/%d: %v\n%s", c.proto, err, g.log)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != c.proto || resp.StatusCode != 200 || string(b) != "file a" {
					t.Errorf("HTTP/%d: %s %s %q", c.proto, resp.Proto, resp.Status, b)
				}
				if want := `h3=":` + port + `"; ma=86400`; c.proto == 2 && resp.Header.Get("Alt-Svc") != want {
					t.Errorf("Alt-Svc %q, want %q", resp.Header.Get("Alt-Svc"), want)
				}
			}
			resp, err := http.Get("http://" + hs.http + "/a.txt")
			if err != nil {
				t.Fatalf("plain HTTP on the passed socket: %v", err)
			}
			resp.Body.Close()

			// the listening sockets gantry holds are the passed ones (the same
			// sockets, duplicated), and nothing else
			passed := map[uint64]bool{}
			for _, f := range hs.files {
				passed[inode(t, f)] = true
			}
			held := listeningSockets(t, g.cmd.Process.Pid)
			for ino := range held {
				if !passed[ino] {
					t.Errorf("gantry bound a socket of its own (inode %d)", ino)
				}
			}
			for ino := range passed {
				if !held[ino] {
					t.Errorf("gantry does not hold the passed socket (inode %d)", ino)
				}
			}
		})
	}
}

// With HTTPS off in the config, the socket of gantry-https.socket is no one's:
// gantry refuses to start naming it, instead of leaving its connections waiting.
func TestSocketActivationHTTPSOff(t *testing.T) {
	hs := holdSockets(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "gantry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[server]\nlisten=[%q]\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", hs.http, dir)), 0o644)
	g := startActivated(t, hs.files, []string{"listen", "tls_listen", "tls_listen"}, newNotifySocket(t), "serve", "-c", conf)
	err := g.cmd.Wait()
	log := g.log.String()
	if err == nil || !strings.Contains(log, hs.tls) || !strings.Contains(log, "ListenDatagram=") || !strings.Contains(log, "tls_listen") {
		t.Errorf("exit %v, log %q: want an error naming both HTTPS sockets and the fix", err, log)
	}
}
