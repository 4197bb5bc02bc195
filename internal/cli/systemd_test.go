package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// notifySocket is the service manager's end of $NOTIFY_SOCKET.
type notifySocket struct {
	path string
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, msgs: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

// expect returns the first message with a line starting with prefix, skipping
// the others (the periodic status and watchdog pings).
func (n *notifySocket) expect(t *testing.T, prefix string, log fmt.Stringer) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-n.msgs:
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, prefix) {
					return m
				}
			}
		case <-timeout:
			t.Fatalf("no %q notification; gantry's log:\n%s", prefix, log)
		}
	}
}

// activated is a gantry started the way systemd starts gantry.service: the
// sockets (held by the test, as the .socket units hold them) passed as
// descriptors 3 and on, named by fdNames (LISTEN_FDNAMES).
type activated struct {
	cmd *exec.Cmd
	log *peertest.LogBuffer
}

func startActivated(t *testing.T, socks []*os.File, fdNames []string, notify *notifySocket, args ...string) *activated {
	t.Helper()
	// LISTEN_PID is the pid of the process that gets the sockets: sh learns its
	// own and execs gantry in its place.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, gantryBin}, args...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("LISTEN_FDS=%d", len(socks)), "LISTEN_FDNAMES="+strings.Join(fdNames, ":"),
		"NOTIFY_SOCKET="+notify.path, "WATCHDOG_USEC=400000")
	cmd.ExtraFiles = socks
	a := &activated{cmd: cmd, log: &peertest.LogBuffer{}}
	cmd.Stderr, cmd.Stdout = a.log, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return a
}

// Restarting gantry.service while gantry.socket holds the port fails no request:
// connections wait in the kernel's backlog until the new process accepts, and the
// old one answers every connection it accepted before it exits.
// HTTPS is restarted the same way: the TLS stream socket and HTTP/3's UDP socket
// come from one unit with the HTTP socket, one name for all three.
func TestSocketActivationRestartUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fast, https bool
	}{
		{name: "http fast_path", fast: true},
		{name: "http"},
		{name: "https", https: true},
	} {
		t.Run(tc.name, func(t *testing.T) { restartUnderLoad(t, tc.fast, tc.https) })
	}
}

func restartUnderLoad(t *testing.T, fast, https bool) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello"), 0o644)
	hs := holdSockets(t)
	addr := hs.http
	conf := filepath.Join(dir, "gantry.toml")
	// the config names the sockets' addresses: gantry must not bind them again
	socks, names := hs.files[:1], []string{"gantry.socket"}
	tlsConf := ""
	if https {
		// plain HTTP redirects to HTTPS then: the load goes over HTTPS
		socks, names = hs.files, []string{"gantry.socket", "gantry.socket", "gantry.socket"}
		tlsConf = fmt.Sprintf("tls_listen=[%q]\n[tls]\nstorage=%q\n", hs.tls, filepath.Join(dir, "tls"))
	}
	os.WriteFile(conf, []byte(fmt.Sprintf("[server]\nlisten=[%q]\naccess_log=\"off\"\nfast_path=%v\n%s[admin]\nlisten=\"off\"\n[[site]]\nhosts=[\"localhost\", \"127.0.0.1\"]\nroot=%q\n",
		hs.http, fast, tlsConf, dir)), 0o644)
	notify := newNotifySocket(t)

	g := startActivated(t, socks, names, notify, "serve", "-c", conf)
	notify.expect(t, "READY=1", g.log)
	peertest.WaitFor(t, 0, "the log line saying gantry serves the passed socket", func() bool {
		return strings.Contains(g.log.String(), "socket_activated=true")
	})
	url := "http://" + addr + "/"
	var pool *x509.CertPool
	if https {
		_, port, _ := net.SplitHostPort(hs.tls)
		url = "https://localhost:" + port + "/"
		pool = waitHTTPS(t, filepath.Join(dir, "tls"), url, g.log)
	}

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// half the clients reuse connections, half open one per request
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
				DisableKeepAlives: i%2 == 0, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: pool},
			}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != "hello" {
						err = fmt.Errorf("%s %q", resp.Status, b)
					}
				}
				if err != nil {
					err = fmt.Errorf("keep-alive %v: %w", i%2 == 1, err)
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	for restart := range 3 {
		before := ok.Load()
		peertest.WaitFor(t, 20*time.Second, "requests served", func() bool { return ok.Load() > before+50 })
		if restart == 0 {
			// the periodic status and the watchdog pings, then a reload
			notify.expect(t, "STATUS=", g.log)
			notify.expect(t, "WATCHDOG=1", g.log)
			g.cmd.Process.Signal(syscall.SIGHUP)
			if m := notify.expect(t, "RELOADING=1", g.log); !strings.Contains(m, "\nMONOTONIC_USEC=") {
				t.Errorf("reloading without MONOTONIC_USEC: %q", m)
			}
			if m := notify.expect(t, "READY=1", g.log); !strings.Contains(m, "STATUS=") || !strings.Contains(m, "req/s") {
				t.Errorf("ready after reload without a status line: %q", m)
			}
		}
		g.cmd.Process.Signal(syscall.SIGTERM)
		notify.expect(t, "STOPPING=1", g.log)
		if err := g.cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, g.log)
		}
		g = startActivated(t, socks, names, notify, "serve", "-c", conf)
		notify.expect(t, "READY=1", g.log)
	}
	before := ok.Load()
	peertest.WaitFor(t, 20*time.Second, "requests served by the last gantry", func() bool { return ok.Load() > before+50 })
	stopLoad()
	t.Logf("%d requests over 3 restarts, %d failed", ok.Load(), failed.Load())
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed across restarts; first: %v", n, n+ok.Load(), firstErr.Load())
	}
}

// A passed socket that no configured address matches is an error naming it: the
// manager would hold it open and its connections would wait forever.
func TestSocketActivationUnmatchedSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock, _ := ln.(*net.TCPListener).File()
	defer sock.Close()
	notify := newNotifySocket(t)
	g := startActivated(t, []*os.File{sock}, []string{"gantry.socket"}, notify, "serve", t.TempDir(), "--listen", peertest.FreeAddr(t), "--admin", "off")
	err = g.cmd.Wait()
	if err == nil || !strings.Contains(g.log.String(), ln.Addr().String()) || !strings.Contains(g.log.String(), "FileDescriptorName=listen") {
		t.Errorf("exit %v, log %q: want an error naming the socket and the fix", err, g.log)
	}
	// named for the key, the same socket serves whatever address the config lists
	g = startActivated(t, []*os.File{sock}, []string{"listen"}, notify, "serve", t.TempDir(), "--listen", peertest.FreeAddr(t), "--admin", "off")
	notify.expect(t, "READY=1", g.log)
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("the socket named listen is not served: %v\n%s", err, g.log)
	}
	resp.Body.Close()
}

// On the journal's stream, log lines carry a syslog priority and no timestamp
// (the journal has its own); elsewhere they keep theirs.
func TestJournalLogFormat(t *testing.T) {
	for _, journal := range []bool{true, false} {
		t.Run(fmt.Sprint("journal=", journal), func(t *testing.T) {
			errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer errFile.Close()
			cmd := exec.Command(gantryBin, "serve", t.TempDir(), "--listen", "127.0.0.1:0", "--admin", "off")
			cmd.Stderr = errFile
			cmd.Env = os.Environ()
			if journal {
				var st syscall.Stat_t
				syscall.Fstat(int(errFile.Fd()), &st)
				cmd.Env = append(cmd.Env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			read := func() string { b, _ := os.ReadFile(errFile.Name()); return string(b) }
			peertest.WaitFor(t, 30*time.Second, "the serving line", func() bool { return strings.Contains(read(), "msg=serving") })
			line := read()
			line = line[:strings.IndexByte(line, '\n')]
			if journal && (!strings.HasPrefix(line, "<6>msg=serving ") || strings.Contains(line, "time=")) {
				t.Errorf("journal line %q: want <6>msg=serving and no time=", line)
			}
			if !journal && !strings.HasPrefix(line, "time=") {
				t.Errorf("plain line %q: want it unchanged, time= first", line)
			}
		})
	}
}
