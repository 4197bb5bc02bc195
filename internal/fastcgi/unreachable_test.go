package fastcgi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/internal/peertest"
)

// TestUnreachableProcessRetried makes one spawned process unreachable, as one
// that died a moment before the pool noticed: its requests, POSTs included,
// must go to another process, not fail. Found by bench/soak.sh: they got 502.
func TestUnreachableProcessRetried(t *testing.T) {
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	srv, h, logs := serve(t, Options{Command: []string{bin}, Processes: 2, Route: "*.php"}, nil)
	dir := h.src.(*cmdSource).dir
	socks, err := filepath.Glob(filepath.Join(dir, "0-*.sock"))
	if err != nil || len(socks) != 1 {
		t.Fatalf("process 0's socket in %s: %v %v", dir, socks, err)
	}
	if err := os.Rename(socks[0], socks[0]+".gone"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		resp, err := srv.Client().Post(srv.URL+"/echo.php", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d\n%s", i, resp.StatusCode, logs)
		}
	}
	if !strings.Contains(logs.String(), "fastcgi process unreachable; trying another") {
		t.Fatalf("no request met the unreachable process:\n%s", logs)
	}
}
