package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/peertest"
	"gantry/internal/wsgi"
)

var gantryBin string

// buildTags are the test binary's own, for the gantry binary the tests run
// (cli_python_test.go sets them in a build with Python).
var buildTags = ""

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gantry-cli-test")
	if err != nil {
		panic(err)
	}
	gantryBin = filepath.Join(dir, "gantry")
	// Every gantry these tests start (in process or not) keeps its state here:
	// as root it would otherwise write /var/lib/gantry, as a user ~/.local/share.
	state := filepath.Join(dir, "state")
	os.Setenv("STATE_DIRECTORY", state)
	out, err := exec.Command("go", "build", "-tags", buildTags, "-o", gantryBin, "gantry/cmd/gantry").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building gantry: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestPlainErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[server]\nlisten = [\"127.0.0.1:0\"]\nlistn = 3\n[[site]]\nroot = \"/nonexistent/x\"\n"), 0o644)
	typed := filepath.Join(dir, "typed.toml")
	os.WriteFile(typed, []byte("[server]\nmax_body = true\nlistn = 3\n[[site]]\nhosts = \"a.test\"\n\nroot = \"/nonexistent/x\"\n"), 0o644)
	tests := []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"unknown flag", []string{"serve", "--bogus"}, []string{"gantry serve: flag provided but not defined: -bogus"}},
		{"unknown command", []string{"srve"}, []string{`unknown command "srve"`}},
		{"missing directory", []string{"serve", filepath.Join(dir, "nope")}, []string{"is not a directory"}},
		{"missing config", []string{"serve", "-c", filepath.Join(dir, "nope.toml")}, []string{"no such file"}},
		{"check lists every problem with its line", []string{"check", "-c", bad}, []string{bad + ":3: unknown key \"listn\"", "site root \"/nonexistent/x\"", "2 problem(s)"}},
		{"check goes on past a value of the wrong type", []string{"check", typed}, []string{typed + ":2: key \"server.max_body\": invalid size", typed + ":3: unknown key \"listn\"",
			typed + ":5: key \"hosts\"", typed + ":7: site root \"/nonexistent/x\"", "4 problem(s)"}},
		{"bad --cgi", []string{"serve", dir, "--cgi", "nodir"}, []string{"want PREFIX=DIR"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, "", tc.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr has a Go trace: %s", stderr)
			}
		})
	}
}

func TestCheckOK(t *testing.T) {
	out, _, code := run(t, "", "check", "-c", "../../examples/demo/gantry.toml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check demo: %d %q", code, out)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "", "version")
	if code != 0 || !regexp.MustCompile(`^gantry \S+\n(commit .*\n)?go1\S* linux/\w+, build tags: \S+\npython: .*\n$`).MatchString(out) {
		t.Errorf("version: %d %q", code, out)
	}
	if want := pythonText(wsgi.PythonLinked()); !strings.HasSuffix(out, want) {
		t.Errorf("version: %q does not end with %q", out, want)
	}
	out, _, code = run(t, "", "version", "-short")
	if code != 0 || !regexp.MustCompile(`^\S+\n$`).MatchString(out) {
		t.Errorf("version -short: %d %q", code, out)
	}
}

func TestPythonText(t *testing.T) {
	for _, tc := range []struct{ linked, want string }{
		{"", "python: not linked (wsgi mode = \"embedded\" needs a gantry built with -tags python)\n"},
		{"3.11.2", "python: libpython 3.11.2 linked (wsgi mode = \"embedded\")\n"},
	} {
		if got := pythonText(tc.linked); got != tc.want {
			t.Errorf("pythonText(%q) = %q, want %q", tc.linked, got, tc.want)
		}
	}
}

func TestVersionText(t *testing.T) {
	base := []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}
	vcs := append(slices.Clone(base), debug.BuildSetting{Key: "vcs.revision", Value: "6477e38475b516ccc8bf3ac07f99bf40a1a11b3a"},
		debug.BuildSetting{Key: "vcs.time", Value: "2026-12-03T09:23:50Z"})
	cases := []struct {
		name     string
		main     string
		settings []debug.BuildSetting
		want     string
	}{
		{"tagged release", "v1.2.0", append(slices.Clone(vcs), debug.BuildSetting{Key: "-tags", Value: "python"}),
			"gantry v1.2.0\ncommit 6477e38475b516ccc8bf3ac07f99bf40a1a11b3a (2026-12-03T09:23:50Z)\ngo1.26.8 linux/arm64, build tags: python\n"},
		{"pseudo-version of a dirty tree", "v0.0.0-20261203092350-6477e38475b5+dirty", append(slices.Clone(vcs), debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			"gantry v0.0.0-20261203092350-6477e38475b5+dirty\ncommit 6477e38475b516ccc8bf3ac07f99bf40a1a11b3a (2026-12-03T09:23:50Z) with uncommitted changes\ngo1.26.8 linux/arm64, build tags: none\n"},
		{"commit without a module version", "(devel)", append(slices.Clone(vcs), debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			"gantry devel-6477e38475b5+dirty\ncommit 6477e38475b516ccc8bf3ac07f99bf40a1a11b3a (2026-12-03T09:23:50Z) with uncommitted changes\ngo1.26.8 linux/arm64, build tags: none\n"},
		{"no version control", "(devel)", base, "gantry devel\ngo1.26.8 linux/arm64, build tags: none\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "gantry", Version: tc.main}, Settings: tc.settings}
			if got := versionText(bi); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// proc is a running gantry binary.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr *bytes.Buffer
	addr   string
}

func (p *proc) logLine(l string) {
	p.mu.Lock()
	p.stderr.WriteString(l + "\n")
	p.mu.Unlock()
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

var servingRE = regexp.MustCompile(`msg=serving addr=http://(\S+)`)

// startGantry runs the gantry binary and waits for its "serving" log line.
func startGantry(t *testing.T, args ...string) *proc {
	t.Helper()
	return startGantryAs(t, nil, nil, gantryBin, args...)
}

// startGantryEnv is startGantry with env added to gantry's environment.
func startGantryEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startGantryAs(t, nil, env, gantryBin, args...)
}

// startGantryAs is startGantry of the binary bin with env added to its
// environment, as the user of cred when it is not nil.
func startGantryAs(t *testing.T, cred *syscall.Credential, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &bytes.Buffer{}}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("gantry exited before serving: %s", p.log())
			}
			p.logLine(l)
			if m := servingRE.FindStringSubmatch(l); m != nil {
				p.addr = m[1]
				go func() {
					for l := range lines {
						p.logLine(l)
					}
				}()
				return p
			}
		case <-timeout:
			t.Fatalf("gantry did not start: %s", p.log())
		}
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := run(t, "", "serve", t.TempDir(), "--listen", ln.Addr().String(), "--admin", "off")
	if code != 1 || !strings.Contains(stderr, "address already in use") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q: want one line naming the address in use", code, stderr)
	}
}

func TestServeDirSignals(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("v1"), 0o644)
	conf := filepath.Join(dir, "gantry.toml")
	logFile := filepath.Join(dir, "access.log")
	write := func(root string) {
		os.WriteFile(conf, []byte(fmt.Sprintf("[server]\nlisten=[%q]\naccess_log=%q\n[admin]\nlisten=\"off\"\n[[site]]\nroot=%q\n", peertest.FreeAddr(t), logFile, root)), 0o644)
	}
	pub2 := filepath.Join(dir, "v2")
	os.MkdirAll(pub2, 0o755)
	os.WriteFile(filepath.Join(pub2, "index.html"), []byte("v2"), 0o644)
	write(dir)
	p := startGantry(t, "serve", "-c", conf)
	body := func() string {
		resp, err := http.Get("http://" + p.addr + "/")
		if err != nil {
			t.Fatalf("%v\ngantry's log:\n%s", err, p.log())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if b := body(); b != "v1" {
		t.Fatalf("got %q", b)
	}
	// SIGHUP: the new root serves; listen changes only on restart, so the old
	// address keeps working.
	write(pub2)
	p.cmd.Process.Signal(syscall.SIGHUP)
	peertest.WaitFor(t, 20*time.Second, "reload by SIGHUP", func() bool { return body() == "v2" })
	// SIGUSR1 reopens the access log after rotation.
	os.Rename(logFile, logFile+".1")
	p.cmd.Process.Signal(syscall.SIGUSR1)
	peertest.WaitFor(t, 20*time.Second, "access log reopened", func() bool {
		body()
		b, _ := os.ReadFile(logFile)
		return bytes.Contains(b, []byte(`"GET / HTTP/1.1" 200`))
	})
	// SIGTERM: a clean exit.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, p.log())
	}
}

// Started as root with [server] user, gantry binds, then drops to the user before
// any worker process starts: neither gantry nor its Python workers keep root.
func TestDropsPrivilegesBeforeWorkers(t *testing.T) {
	if os.Getuid() != 0 {
		peertest.Missing(t, "root", "the test starts gantry as root and checks that it drops to nobody")
	}
	python := peertest.Python(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// the worker, running as nobody, must reach its app
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "app.py"), []byte("def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hi']\n"), 0o644)
	conf := filepath.Join(dir, "gantry.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[server]\nlisten=[%q]\nuser=\"nobody\"\naccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[[site]]\n  [[site.route]]\n  path=\"/\"\n  wsgi=\"app:application\"\n  chdir=%q\n  python=%q\n  processes=1\n", peertest.FreeAddr(t), dir, python)), 0o644)
	p := startGantry(t, "serve", "-c", conf)
	resp, err := http.Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pids := append([]int{p.cmd.Process.Pid}, childrenOf(t, p.cmd.Process.Pid)...)
	if len(pids) < 2 {
		t.Fatal("no worker process under gantry")
	}
	// The group list is nobody's as initgroups(3) builds it, as id(1) reports it:
	// none of root's groups is kept.
	idG, err := exec.Command("id", "-G", "nobody").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantGroups := strings.Fields(string(idG))
	slices.Sort(wantGroups)
	for _, pid := range pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindSubmatch(status)
		if m == nil || string(m[1]) != nobody.Uid || string(m[2]) != nobody.Uid {
			t.Errorf("pid %d runs as uid %s/%s, want nobody (%s)", pid, m[1], m[2], nobody.Uid)
		}
		g := regexp.MustCompile(`(?m)^Groups:(.*)$`).FindSubmatch(status)
		if g == nil {
			t.Fatalf("pid %d: no Groups line", pid)
		}
		if got := strings.Fields(string(g[1])); !slices.Equal(slices.Sorted(slices.Values(got)), wantGroups) {
			t.Errorf("pid %d has groups %v, want nobody's %v", pid, got, wantGroups)
		}
	}
}

// childrenOf lists the processes whose parent is pid (any of its threads may have
// forked them, so /proc/PID/task/PID/children is not enough).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscan(e.Name(), &n); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// the command sits in parentheses and may hold spaces: fields follow the last ')'
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		var state string
		var ppid int
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

func TestServeProcs(t *testing.T) {
	cases := []struct {
		name     string
		envSet   bool
		n        int
		embedded bool
		want     int
	}{
		{"one cpu stays one", false, 1, false, 1},
		{"two cpus leave one to the workers", false, 2, false, 1},
		{"eight cpus leave one", false, 8, false, 7},
		{"GOMAXPROCS set wins", true, 2, false, 2},
		{"embedded Python keeps every cpu", false, 2, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := serveProcs(tc.envSet, tc.n, tc.embedded); got != tc.want {
				t.Errorf("serveProcs(%v, %d, %v) = %d, want %d", tc.envSet, tc.n, tc.embedded, got, tc.want)
			}
		})
	}
	embedded := func(mode string) *config.Config {
		return &config.Config{Sites: []config.Site{{Routes: []config.Route{{Handler: &wsgi.Options{Mode: mode}}}}}}
	}
	if embeddedPython(embedded("daemon")) || !embeddedPython(embedded("embedded")) {
		t.Error("embeddedPython does not tell an embedded WSGI route from a daemon one")
	}
}

// TestServeDirPHPAuto runs `gantry serve DIR --php auto` with no config on a
// front-controller app: / runs index.php, a pretty URL reaches it too, and the
// startup log says so.
func TestServeDirPHPAuto(t *testing.T) {
	peertest.Binary(t, "php-cgi", "php-cgi8.2")
	dir := filepath.Join(t.TempDir(), "www")
	if err := os.CopyFS(dir, os.DirFS("../server/testdata/phpapp")); err != nil {
		t.Fatal(err)
	}
	p := startGantry(t, "serve", dir, "--php", "auto", "--listen", peertest.FreeAddr(t), "--admin", "off", "--access-log", "off")
	if !strings.Contains(p.log(), "PHP front controller: /index.php") {
		t.Errorf("startup log does not name the front controller:\n%s", p.log())
	}
	for path, want := range map[string]string{"/": "route=home", "/blog/hello-world?x=1": "route=post slug=hello-world", "/admin/": "route=admin"} {
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d %q, want 200 with %q\n%s", path, resp.StatusCode, b, want, p.log())
		}
	}
}

func TestCheckPrintsInternalRoot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gantry.toml")
	storage := filepath.Join(dir, "tls")
	os.WriteFile(file, []byte("[server]\ntls_listen = [\"127.0.0.1:8443\"]\n[tls]\nstorage = \""+storage+"\"\n[[site]]\nhosts = [\"localhost\"]\nroot = \""+dir+"\"\n"), 0o644)
	out, _, code := run(t, "", "check", "-c", file)
	if want := "internal CA root: " + filepath.Join(storage, "ca", "root.pem"); code != 0 || !strings.Contains(out, want) {
		t.Errorf("check: %d %q; want %q", code, out, want)
	}
	// No HTTPS, no root to mention.
	os.WriteFile(file, []byte("[[site]]\nhosts = [\"localhost\"]\nroot = \""+dir+"\"\n"), 0o644)
	if out, _, _ := run(t, "", "check", "-c", file); strings.Contains(out, "internal CA") {
		t.Errorf("check without tls_listen mentions the CA: %q", out)
	}
}

// TestServeDirTLSListen: `gantry serve DIR --tls-listen ADDR` serves the files
// over HTTPS with the internal CA, says where the root is, and keeps serving
// plain HTTP on --listen.
func TestServeDirTLSListen(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("file a"), 0o644)
	storage := filepath.Join(t.TempDir(), "tls")
	tlsAddr := peertest.FreeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	p := startGantry(t, "serve", dir, "--listen", peertest.FreeAddr(t), "--tls-listen", tlsAddr, "--tls-storage", storage, "--admin", "off", "--access-log", "off")
	root := filepath.Join(storage, "ca", "root.pem")
	peertest.WaitFor(t, 20*time.Second, "the https address and the root in the log", func() bool {
		l := p.log()
		return strings.Contains(l, "msg=serving addr=https://"+tlsAddr) && strings.Contains(l, "internal CA root") && strings.Contains(l, "root="+root)
	})
	pem, err := os.ReadFile(root)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", root)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		url := "https://" + net.JoinHostPort(host, tlsPort) + "/a.txt"
		var resp *http.Response
		// The certificates are issued in the background just after start.
		peertest.WaitFor(t, 20*time.Second, url, func() bool {
			resp, err = c.Get(url)
			return err == nil
		})
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "file a" || resp.ProtoMajor != 2 {
			t.Errorf("GET %s: %s %d %q, want HTTP/2.0 200 \"file a\"\n%s", url, resp.Proto, resp.StatusCode, b, p.log())
		}
	}
	// Plain HTTP keeps serving the files, not redirecting them.
	resp, err := http.Get("http://" + p.addr + "/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "file a" {
		t.Errorf("plain HTTP: %d %q, want 200 \"file a\"", resp.StatusCode, b)
	}
}

// TestTLSStorageForServerUser: gantry obtains certificates after dropping root,
// so [tls] storage must be the [server] user's. Started as root, gantry makes a
// missing storage for that user; storage holding someone else's files stops it
// at start with the fix, as it does a gantry not started as root.
func TestTLSStorageForServerUser(t *testing.T) {
	if os.Getuid() != 0 {
		peertest.Missing(t, "root", "the test starts gantry as root and checks what it makes for nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	// nobody must reach the site and the storage's parent
	base := t.TempDir()
	os.Chmod(filepath.Dir(base), 0o755)
	os.Chmod(base, 0o755)
	os.WriteFile(filepath.Join(base, "a.txt"), []byte("file a"), 0o644)
	conf := func(t *testing.T, user, storage string) (string, string) {
		tlsAddr := peertest.FreeAddr(t)
		f, err := os.CreateTemp(base, "gantry-*.toml")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		file := f.Name()
		os.Chmod(file, 0o644)
		u := ""
		if user != "" {
			u = fmt.Sprintf("user=%q\n", user)
		}
		os.WriteFile(file, []byte(fmt.Sprintf("[server]\nlisten=[%q]\ntls_listen=[%q]\n%saccess_log=\"off\"\n[admin]\nlisten=\"off\"\n[tls]\nstorage=%q\n[[site]]\nhosts=[\"localhost\"]\nroot=%q\n",
			peertest.FreeAddr(t), tlsAddr, u, storage, base)), 0o644)
		return file, tlsAddr
	}
	// fails runs gantry, as root or as nobody, and returns what it said on exiting.
	fails := func(t *testing.T, file string, asNobody bool) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, gantryBin, "serve", "-c", file)
		if asNobody {
			// nobody must reach the binary; the test's directory may be closed to it
			os.Chmod(filepath.Dir(gantryBin), 0o755)
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		out, err := cmd.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("gantry did not refuse to start (%v):\n%s", err, out)
		}
		return fmt.Sprintf("%s(%v)", out, err)
	}

	t.Run("made for the user", func(t *testing.T) {
		storage := filepath.Join(base, "state", "tls")
		file, tlsAddr := conf(t, "nobody", storage)
		p := startGantry(t, "serve", "-c", file)
		rootFile := filepath.Join(storage, "ca", "root.pem")
		peertest.WaitFor(t, 20*time.Second, "the internal root", func() bool { return fileExists(rootFile) })
		b, _ := os.ReadFile(rootFile)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b)
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		_, port, _ := net.SplitHostPort(tlsAddr)
		var resp *http.Response
		peertest.WaitFor(t, 20*time.Second, "HTTPS", func() bool {
			resp, err = c.Get("https://localhost:" + port + "/a.txt")
			return err == nil
		})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "file a" {
			t.Errorf("HTTPS body %q\n%s", body, p.log())
		}
		for _, f := range []string{storage, filepath.Join(storage, "ca", "root.key")} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != uid {
				t.Errorf("%s belongs to uid %d, want nobody (%d)", f, st.Uid, uid)
			}
			if f == storage && fi.Mode().Perm() != 0o700 {
				t.Errorf("%s mode %v, want 0700", f, fi.Mode().Perm())
			}
		}
	})

	t.Run("root's files in it", func(t *testing.T) {
		storage := filepath.Join(base, "rootowned")
		os.MkdirAll(filepath.Join(storage, "ca"), 0o700)
		os.Chown(storage, uid, gid)
		os.WriteFile(filepath.Join(storage, "ca", "root.pem"), []byte("x"), 0o600)
		file, _ := conf(t, "nobody", storage)
		out := fails(t, file, false)
		for _, want := range []string{filepath.Join(storage, "ca") + " belongs to root", "chown -R nobody: " + storage} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("not root, storage root's", func(t *testing.T) {
		storage := filepath.Join(base, "notmine")
		os.Mkdir(storage, 0o755)
		file, _ := conf(t, "", storage)
		out := fails(t, file, true)
		for _, want := range []string{storage + " belongs to root, but gantry runs as nobody", "chown -R nobody: " + storage} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
}
