package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/ban"
	"gantry/internal/config"
	"gantry/internal/passhash"
	"gantry/internal/peertest"
)

// node is one whole gantry with bans, its admin listener on loopback.
type node struct {
	e    *extras
	logs *syncBuffer
}

func startNode(t *testing.T, extra string) *node { return startNodeTele(t, "", extra) }

// startNodeTele is startNode with [telescope] keys besides.
func startNodeTele(t *testing.T, tele, extra string) *node {
	t.Helper()
	dir := t.TempDir()
	hash, err := passhash.New("fleet-secret")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "127.0.0.1:0"
password_hash = %q

[telescope]
%s

[telescope.ban]
enabled = true
file = "off"
import_every = "1s"
%s

[[site]]
root = %q
`, hash, tele, extra, dir)), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	_, e := serveExtras(t, cfg, log)
	return &node{e: e, logs: logs}
}

// TestBanImportTwoNodes: node B imports node A's bans over A's authenticated
// admin API, marked with A as their origin; A, importing from B in turn, does
// not take them back; a wrong password is logged without the password; A's
// unban is followed.
func TestBanImportTwoNodes(t *testing.T) {
	a := startNode(t, "")
	aURL := "http://gantry:fleet-secret@" + a.e.adminAddr.String()
	wrong := startNode(t, fmt.Sprintf("import = [%q]", "http://gantry:not-the-password@"+a.e.adminAddr.String()))
	b := startNode(t, fmt.Sprintf("import = [%q]", aURL))

	if _, err := a.e.bans.Ban("203.0.113.7", "seen on A", time.Hour); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("203.0.113.7")
	peertest.WaitFor(t, 20*time.Second, "B to import A's ban", func() bool { return b.e.bans.Banned(src) })
	bans, _ := b.e.bans.Snapshot(0)
	if len(bans) != 1 || bans[0].Origin != a.e.adminAddr.String() || bans[0].Rule != "manual" || bans[0].Sample != "seen on A" {
		t.Fatalf("B's bans %+v", bans)
	}

	// A imports from B too, and B bans a source of its own: A takes that one,
	// and neither takes back what it passed on
	if _, err := b.e.bans.Ban("203.0.113.8", "seen on B", time.Hour); err != nil {
		t.Fatal(err)
	}
	stop := a.e.bans.StartImport(context.Background(), importOpts(t, "http://gantry:fleet-secret@"+b.e.adminAddr.String()))
	defer stop()
	peertest.WaitFor(t, 20*time.Second, "A to import B's own ban", func() bool { return a.e.bans.Banned(netip.MustParseAddr("203.0.113.8")) })
	// B polls A every second: two more polls are its chance to take its own
	// ban back, which it must not
	_, st := b.e.bans.Snapshot(0)
	peertest.WaitFor(t, 20*time.Second, "B to poll A twice more", func() bool {
		_, now := b.e.bans.Snapshot(0)
		return now.ImportPolls >= st.ImportPolls+2
	})
	origins := func(n *node) map[string]string {
		bans, _ := n.e.bans.Snapshot(0)
		m := map[string]string{}
		for _, b := range bans {
			m[b.Source] = b.Origin
		}
		return m
	}
	if got := origins(a); len(got) != 2 || got["203.0.113.7/32"] != "" || got["203.0.113.8/32"] != b.e.adminAddr.String() {
		t.Fatalf("A's bans: %v", got)
	}
	if got := origins(b); len(got) != 2 || got["203.0.113.8/32"] != "" || got["203.0.113.7/32"] != a.e.adminAddr.String() {
		t.Fatalf("B's bans: %v", got)
	}

	peertest.WaitFor(t, 20*time.Second, "the wrong password refused", func() bool {
		return strings.Contains(wrong.logs.String(), `msg="bans not imported"`)
	})
	if l := wrong.logs.String() + b.logs.String(); strings.Contains(l, "not-the-password") || strings.Contains(l, "fleet-secret") {
		t.Fatalf("a password was logged:\n%s", l)
	}
	if wrong.e.bans.Banned(src) {
		t.Fatal("a node with the wrong password imported a ban")
	}

	if ok, err := a.e.bans.Unban("203.0.113.7"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	peertest.WaitFor(t, 20*time.Second, "B to follow A's unban", func() bool { return !b.e.bans.Banned(src) })
}

func importOpts(t *testing.T, raw string) ban.ImportOptions {
	u, err := config.ImportURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ban.ImportOptions{Sources: []*url.URL{u}, Every: 100 * time.Millisecond}
}

// TestBanExport: a node's own bans go to ClickHouse's bans table, under its
// node name; what it imported from another node does not (that node exports
// its own).
func TestBanExport(t *testing.T) {
	ch := peertest.StartClickHouse(t)
	a := startNode(t, "")
	b := startNodeTele(t, fmt.Sprintf("export = %q\nexport_user = %q\nexport_password = %q\nnode_name = \"edge-b\"",
		ch.URL+"/?database=fleet", ch.User, ch.Password),
		fmt.Sprintf("import = [%q]", "http://gantry:fleet-secret@"+a.e.adminAddr.String()))
	if _, err := a.e.bans.Ban("203.0.113.7", "seen on A", time.Hour); err != nil {
		t.Fatal(err)
	}
	peertest.WaitFor(t, 20*time.Second, "B to import A's ban", func() bool { return b.e.bans.Banned(netip.MustParseAddr("203.0.113.7")) })
	if _, err := b.e.bans.Ban("2001:db8:1:2::99", "seen on B", time.Hour); err != nil {
		t.Fatal(err)
	}
	rows := func() string {
		if strings.TrimSpace(ch.Query(t, "EXISTS TABLE fleet.bans")) != "1" {
			return ""
		}
		return ch.Query(t, "SELECT node, source, rule, sample, strikes, until - time FROM fleet.bans ORDER BY time")
	}
	peertest.WaitFor(t, 20*time.Second, "B's ban in ClickHouse", func() bool { return rows() != "" })
	if got, want := rows(), "edge-b\t2001:db8:1:2::/64\tmanual\tseen on B\t1\t3600\n"; got != want {
		t.Fatalf("bans table:\n%s\nwant\n%s", got, want)
	}
}

// TestBanImportMany: every ban of a busy node reaches its peer, not only the
// 500 newest its dashboard lists (the others would never be imported, and one
// imported before would be lifted as soon as newer bans pushed it off the
// list).
func TestBanImportMany(t *testing.T) {
	a := startNode(t, "")
	b := startNode(t, fmt.Sprintf("import = [%q]", "http://gantry:fleet-secret@"+a.e.adminAddr.String()))
	const n = 600
	for i := range n {
		if _, err := a.e.bans.Ban(fmt.Sprintf("203.0.%d.%d", i/256, i%256), "seen on A", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	_, st := b.e.bans.Snapshot(0)
	peertest.WaitFor(t, 20*time.Second, "B to poll A twice more", func() bool {
		_, now := b.e.bans.Snapshot(0)
		return now.ImportPolls >= st.ImportPolls+2 || strings.Contains(b.logs.String(), `msg="bans not imported"`)
	})
	missing := 0
	for i := range n {
		if !b.e.bans.Banned(netip.AddrFrom4([4]byte{203, 0, byte(i / 256), byte(i % 256)})) {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("B lacks %d of A's %d bans; B's log:\n%s", missing, n, b.logs.String())
	}
}
