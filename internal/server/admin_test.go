package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gantry/internal/adminsock"
	"gantry/internal/config"
	"gantry/internal/peertest"
)

// startAdmin runs a server whose admin listener and socket answer "local" or
// "tcp" by where the request came from.
func startAdmin(t *testing.T, extra string) (addr, sock string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "gadm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, "gantry.toml")
	writeFile(t, file, fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\n%s\n[admin]\nlisten = \"127.0.0.1:0\"\n[[site]]\nroot = %q\n", extra, dir))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(dir, "run", "admin.sock")
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), AdminSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	a, err := srv.ServeAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if adminsock.Local(r.Context()) {
			io.WriteString(w, "local")
		} else {
			io.WriteString(w, "tcp")
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return a.String(), sock
}

func fetch(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Many half-sent requests on the admin port are closed after
// read_header_timeout, and the admin listener keeps answering.
func TestAdminSlowloris(t *testing.T) {
	addr, sock := startAdmin(t, "read_header_timeout = \"300ms\"")
	const n = 100
	var closed atomic.Int64
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
		go func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.Copy(io.Discard, c)
			if err == nil { // EOF: the server hung up
				closed.Add(1)
			}
		}()
	}
	peertest.WaitFor(t, 5*time.Second, "the admin listener to close the half-sent requests (read_header_timeout 300ms)", func() bool { return closed.Load() == n })
	if got := fetch(t, http.DefaultClient, "http://"+addr+"/"); got != "tcp" {
		t.Fatalf("admin listener after the slowloris: %q", got)
	}
	// the socket's requests, and only those, are marked as gantry's own user's
	if got := fetch(t, adminsock.Client(sock, 10*time.Second), "http://localhost/"); got != "local" {
		t.Fatalf("admin socket: %q", got)
	}
}

// The admin listener holds at most its bound of connections open; the next
// waits in the accept queue until one closes.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, make(chan struct{}, 2))
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	peertest.WaitFor(t, 10*time.Second, "two connections to be accepted", func() bool { return len(accepted) == 2 })
	// the third stays queued while both are open, and is taken once one closes
	first := <-accepted
	if len(accepted) != 1 {
		t.Fatalf("%d connections open past the bound", len(accepted)+1)
	}
	first.Close()
	peertest.WaitFor(t, 10*time.Second, "the third connection to be accepted", func() bool { return len(accepted) == 2 })
}
