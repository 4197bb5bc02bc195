package fastcgi

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestKilledProcessTempFilesRemoved has a php-cgi process leave a temp file and
// be killed: the file goes with the process's private TMPDIR. Found by
// bench/soak.sh: the request bodies php-cgi spools under /tmp piled up there
// from every process killed mid-upload.
func TestKilledProcessTempFilesRemoved(t *testing.T) {
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	srv, h, _ := serve(t, Options{Command: []string{bin}, Processes: 1, Route: "*.php"}, nil)
	resp, file := get(t, srv.URL+"/tmpfile.php")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, file)
	}
	if !strings.Contains(file, "/gantry-tmp-") {
		t.Fatalf("php's temp file %s is not in gantry's private TMPDIR", file)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the temp file is not there while its process runs: %v", err)
	}
	pid := h.Workers()[0].PID
	syscall.Kill(pid, syscall.SIGKILL)
	peertest.WaitFor(t, 0, "the killed process's temp file removed", func() bool {
		_, err := os.Stat(file)
		return os.IsNotExist(err)
	})
	peertest.WaitFor(t, 0, "a new process", func() bool {
		ws := h.Workers()
		return len(ws) == 1 && ws[0].PID != pid
	})
	if resp, body := get(t, srv.URL+"/hello.php"); resp.StatusCode != 200 {
		t.Fatalf("after the kill: %d %q", resp.StatusCode, body)
	}
}
