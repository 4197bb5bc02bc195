package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// publicDir is a directory every user may enter, for files that apps run as other
// users must read (t.TempDir's parents are root's alone).
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gantry-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// probe asks the probe app at u to try each action on each target and returns
// what it got: "ok" or an errno name, per "action target", and its uid.
func probe(t *testing.T, base string, actions url.Values) map[string]any {
	t.Helper()
	code, body := get(t, base+"?"+actions.Encode(), "")
	if code != 200 {
		t.Fatalf("probe %s: %d %s", base, code, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("probe %s: %v: %s", base, err, body)
	}
	return out
}

func uidOf(t *testing.T, name string) float64 {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		peertest.Missing(t, "user "+name, "scripts/install-peers.sh creates it")
	}
	n, _ := strconv.Atoi(u.Uid)
	return float64(n)
}

// TestAppsCannotReachEachOther runs two WSGI apps as two users and a CGI script
// as a third identity, and has each try, from inside its own process, what an
// attacker who took over one app would try against another app and against
// gantry: its worker socket, its processes, the spooled bodies, the TLS keys.
func TestAppsCannotReachEachOther(t *testing.T) {
	peertest.Root(t, "running apps as other users")
	py := peertest.Python(t)
	uidA, uidB := uidOf(t, "gantry-peer"), uidOf(t, "gantry-peer2")
	pub := publicDir(t)
	app := filepath.Join(pub, "app")
	src, err := os.ReadFile("testdata/isolation/probe.py")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(app, "probe.py"), string(src))
	if err := os.Chmod(filepath.Join(app, "probe.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(app, "public.txt")
	writeFile(t, control, "anyone may read this")
	// An admin's careless mkdir: gantry must close both before it keeps secrets there.
	storage, body := filepath.Join(pub, "tls"), filepath.Join(pub, "body")
	for _, d := range []string{storage, body} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv, base, _ := startServer(t, fmt.Sprintf("[server]\nlisten=[\"127.0.0.1:0\"]\ntls_listen=[\"127.0.0.1:0\"]\naccess_log=\"off\"\nbody_temp=%q\n"+
		"[admin]\nlisten=\"off\"\n[tls]\nstorage=%q\nredirect=false\n"+
		"[[site]]\nhosts=[\"localhost\", \"127.0.0.1\"]\nroot=%q\ntls=\"internal\"\n"+
		"  [[site.route]]\n  path=\"/cgi/\"\n  cgi=%q\n  user=\"gantry-peer\"\n"+
		"  [[site.route]]\n  path=\"/a/\"\n  wsgi=\"probe:application\"\n  python=%q\n  chdir=%q\n  processes=1\n  user=\"gantry-peer\"\n"+
		"  [[site.route]]\n  path=\"/b/\"\n  wsgi=\"probe:application\"\n  python=%q\n  chdir=%q\n  processes=1\n  user=\"gantry-peer2\"\n",
		body, storage, app, filepath.Join(app, "probe.py"), py, app, py, app))
	m := srv.Certs()
	peertest.WaitFor(t, 20*time.Second, "the internal CA's certificate for localhost", func() bool { return m.HasCert("localhost") })
	rootKey := filepath.Join(storage, "ca", "root.key")
	if _, err := os.Stat(rootKey); err != nil {
		t.Fatal(err)
	}
	bWorker := workerOf(t, srv, "/b/")
	bSockets, _ := filepath.Glob(filepath.Join(bWorker.dir, "*.sock"))
	if len(bSockets) == 0 {
		t.Fatalf("no socket of app B's worker in %s", bWorker.dir)
	}
	gantryFDs := fmt.Sprintf("/proc/%d/fd", os.Getpid())
	attack := url.Values{
		"connect": bSockets,
		"kill":    {strconv.Itoa(bWorker.pid)},
		"list":    {body, storage, gantryFDs, bWorker.dir},
		"read":    {rootKey, fmt.Sprintf("/proc/%d/environ", bWorker.pid), control},
	}

	a := probe(t, base+"/a/", attack)
	if a["uid"] != uidA {
		t.Fatalf("app A runs as uid %v, want gantry-peer's %v", a["uid"], uidA)
	}
	if b := probe(t, base+"/b/", nil); b["uid"] != uidB {
		t.Fatalf("app B runs as uid %v, want gantry-peer2's %v", b["uid"], uidB)
	}
	cgi := probe(t, base+"/cgi/", url.Values{"list": {storage, body}, "read": {rootKey, control}})
	if cgi["uid"] != uidA {
		t.Fatalf("the CGI script runs as uid %v, want gantry-peer's %v", cgi["uid"], uidA)
	}

	cases := []struct {
		name string
		got  map[string]any
		key  string
		want string
	}{
		{"A reads a public file (the probe works)", a, "read " + control, "ok"},
		{"A connects to B's worker socket", a, "connect " + bSockets[0], "EACCES"},
		{"A signals B's worker", a, "kill " + strconv.Itoa(bWorker.pid), "EPERM"},
		{"A reads B's environment", a, fmt.Sprintf("read /proc/%d/environ", bWorker.pid), "EACCES"},
		{"A lists B's socket directory", a, "list " + bWorker.dir, "EACCES"},
		{"A lists the spooled bodies", a, "list " + body, "EACCES"},
		{"A lists gantry's descriptors (unnamed spooled bodies)", a, "list " + gantryFDs, "EACCES"},
		{"A lists the TLS storage", a, "list " + storage, "EACCES"},
		{"A reads the CA key", a, "read " + rootKey, "EACCES"},
		{"the CGI script reads a public file (the probe works)", cgi, "read " + control, "ok"},
		{"the CGI script reads the CA key", cgi, "read " + rootKey, "EACCES"},
		{"the CGI script lists the TLS storage", cgi, "list " + storage, "EACCES"},
		{"the CGI script lists the spooled bodies", cgi, "list " + body, "EACCES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.got[tc.key]; got != tc.want {
				t.Errorf("%s: %v, want %s", tc.key, got, tc.want)
			}
		})
	}
	for _, d := range []string{storage, body} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, mode %v; want gantry to close it to 0700", d, err, fi.Mode().Perm())
		}
	}
}

type worker struct {
	pid int
	dir string // the directory of its listening socket
}

// workerOf finds the first worker of route's pool and, through the listening
// socket it inherited as fd 3, the directory gantry keeps its sockets in.
func workerOf(t *testing.T, s *Server, route string) worker {
	t.Helper()
	for _, p := range s.Status().Pools {
		if p.Route != route || len(p.Workers) == 0 {
			continue
		}
		pid := p.Workers[0].PID
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid))
		if err != nil {
			t.Fatal(err)
		}
		inode, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			t.Fatalf("worker %d: fd 3 is %s, not its socket", pid, link)
		}
		inode = strings.TrimSuffix(inode, "]")
		table, err := os.ReadFile("/proc/net/unix")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if len(f) == 8 && f[6] == inode {
				return worker{pid: pid, dir: filepath.Dir(f[7])}
			}
		}
		t.Fatalf("worker %d: socket inode %s not in /proc/net/unix", pid, inode)
	}
	t.Fatalf("no worker on route %s", route)
	return worker{}
}
