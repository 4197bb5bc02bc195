package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/server"
)

func TestReloadSentence(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  server.ReloadResult
		want string
	}{
		{"nothing restarted", server.ReloadResult{OK: true, Sites: 1, Routes: 1}, "reloaded: 1 site, 1 route"},
		{"one pool restarted", server.ReloadResult{OK: true, Sites: 3, Routes: 7, Restarted: []string{"/app/"}},
			"reloaded: 3 sites, 7 routes; 1 route restarted (/app/)"},
		{"two pools and a setting for later", server.ReloadResult{OK: true, Sites: 2, Routes: 4, Restarted: []string{"/app/", "example.org /blog/"},
			RestartOnly: []string{"[server] listen", "[admin]"}},
			"reloaded: 2 sites, 4 routes; 2 routes restarted (/app/, example.org /blog/)\nchanged but applied only when gantry restarts: [server] listen; [admin]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reloadSentence(tc.res); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestReloadCommand runs `gantry reload` against a running gantry serving a WSGI
// app: a sentence saying what serves and which workers restarted, the problems
// with file:line when the config is broken (and the old one keeps serving), JSON
// with --json.
func TestReloadCommand(t *testing.T) {
	py := peertest.Python(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.py"), []byte("def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'hi']\n"), 0o644)
	conf := filepath.Join(dir, "gantry.toml")
	good := fmt.Sprintf("[server]\nlisten = [%q]\naccess_log = \"off\"\n[admin]\nlisten = %q\n\n[[site]]\nroot = %q\n\n[[site.route]]\npath = \"/app/\"\nwsgi = \"hello:application\"\nchdir = %q\npython = %q\nprocesses = 1\n",
		peertest.FreeAddr(t), peertest.FreeAddr(t), dir, dir, py)
	os.WriteFile(conf, []byte(good), 0o644)
	run0 := filepath.Join(dir, "run")
	p := startGantryEnv(t, []string{"RUNTIME_DIRECTORY=" + run0}, "serve", "-c", conf)
	sock := filepath.Join(run0, "admin.sock")
	peertest.WaitFor(t, 20*time.Second, "the admin socket", func() bool { _, err := os.Stat(sock); return err == nil })

	out, stderr, code := run(t, "", "reload", "--socket", sock)
	if code != 0 || out != "reloaded: 1 site, 2 routes; 1 route restarted (/app/)\n" {
		t.Fatalf("reload: exit %d, stdout %q, stderr %q\n%s", code, out, stderr, p.log())
	}

	// A new route is started, not restarted; a kept WSGI route restarts its
	// workers (for new code), as does one whose options changed.
	newRoute := fmt.Sprintf("\n[[site.route]]\npath = \"/new/\"\nwsgi = \"hello:application\"\nchdir = %q\npython = %q\nprocesses = 1\n", dir, py)
	os.WriteFile(conf, []byte(good+newRoute), 0o644)
	if out, stderr, code = run(t, "", "reload", "--socket", sock); code != 0 || out != "reloaded: 1 site, 3 routes; 1 route restarted (/app/)\n" {
		t.Fatalf("reload with a new route: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	os.WriteFile(conf, []byte(strings.Replace(good, "processes = 1", "processes = 2", 1)+newRoute), 0o644)
	if out, stderr, code = run(t, "", "reload", "--socket", sock); code != 0 || out != "reloaded: 1 site, 3 routes; 2 routes restarted (/app/, /new/)\n" {
		t.Fatalf("reload with changed options: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	out, _, code = run(t, "", "reload", "--socket", sock, "--json")
	var res server.ReloadResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.OK || res.Sites != 1 || res.Routes != 3 {
		t.Fatalf("reload --json: exit %d, %q", code, out)
	}

	bad := strings.Replace(good, "root = "+fmt.Sprintf("%q", dir), "root = \"/nonexistent/site\"\nbogus = 1", 1)
	os.WriteFile(conf, []byte(bad), 0o644)
	out, stderr, code = run(t, "", "reload", "--socket", sock)
	if code != 1 || out != "" {
		t.Fatalf("broken reload: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"not reloaded, the running configuration keeps serving", conf + ":8: site root \"/nonexistent/site\"", conf + ":9: unknown key \"bogus\""} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if strings.Contains(stderr, "{") {
		t.Errorf("stderr is JSON, not sentences: %q", stderr)
	}
}

// TestReloadOddAnswers: an answer that is not a ReloadResult (an older gantry's
// {"ok":true}, an empty object, something else on the admin port) is never
// turned into a made-up sentence, and --json never prints what is not JSON.
func TestReloadOddAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		json   bool
		code   int
		stdout string // exact, when code is 0
		stderr string // in stderr, when code is not 0
	}{
		{name: "older gantry", status: 200, body: `{"ok":true,"time":"2026-01-02T03:04:05Z"}`, code: 0, stdout: "reloaded\n"},
		{name: "empty object", status: 200, body: `{}`, code: 1, stderr: "200 OK"},
		{name: "null", status: 200, body: `null`, code: 1, stderr: "200 OK"},
		{name: "not JSON", status: 200, body: "hello", code: 1, stderr: "hello"},
		{name: "not JSON with --json", status: 200, body: "<html>hello</html>", json: true, code: 1, stderr: "hello"},
		{name: "server error", status: 500, body: "boom", code: 1, stderr: "500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			args := []string{"reload", "--socket", filepath.Join(t.TempDir(), "none.sock"), "--admin", srv.Listener.Addr().String()}
			if tc.json {
				args = append(args, "--json")
			}
			out, stderr, code := run(t, "", args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tc.code, out, stderr)
			}
			if code == 0 && out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			if code != 0 && (out != "" || !strings.Contains(stderr, tc.stderr)) {
				t.Errorf("stdout %q (want none), stderr %q (want %q in it)", out, stderr, tc.stderr)
			}
		})
	}
}
