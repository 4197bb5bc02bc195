//go:build !python

package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/config"
	"gantry/internal/peertest"
)

// The default build has no embedded Python: a wsgi route with mode = "embedded"
// passes the config check (the key is valid) but the server refuses to start with
// one line that names the build it needs and the mode that works, starts no worker,
// and leaves its listen address free.
func TestEmbeddedWSGIRefusedInDefaultBuild(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.py"), "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'hi']\n")
	file := filepath.Join(dir, "gantry.toml")
	writeFile(t, file, fmt.Sprintf("[server]\nlisten = [%q]\naccess_log = \"off\"\n[admin]\nlisten = \"off\"\n"+
		"[[site]]\n  [[site.route]]\n  path = \"/\"\n  wsgi = \"app:application\"\n  chdir = %q\n  mode = \"embedded\"\n", addr, dir))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("mode = \"embedded\" should pass the config check: %v", err)
	}
	var logs peertest.LogBuffer
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), AdminSocket: "off"})
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("a server with an embedded WSGI route started in the default build")
	}
	msg := err.Error()
	for _, want := range []string{`mode = "embedded" needs a gantry built with -tags python`, "use the default daemon mode"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	again, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the refused server kept %s: %v", addr, err)
	}
	again.Close()
}
