package ban

import (
	"net/netip"
	"testing"
	"time"
)

// TestImportedSurvivesRestart: an imported ban comes back after a restart
// still marked with its origin: not shared as this node's own, lifted when
// that peer lifts it.
func TestImportedSurvivesRestart(t *testing.T) {
	file := t.TempDir() + "/bans.json"
	l, c := newList(t, Options{File: file})
	src := netip.MustParseAddr("203.0.113.70")
	l.apply("node2:2020", []Entry{{Source: src.String(), Rule: Exploit, Until: c.now().Add(time.Hour)}}, true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, _ := newList(t, Options{File: file, Now: c.now})
	if !l2.Banned(src) {
		t.Fatal("the imported ban did not survive a restart")
	}
	if own, _ := l2.Shared(); len(own) != 0 {
		t.Fatalf("the imported ban became this node's own: %+v", own)
	}
	l2.apply("node2:2020", nil, true)
	if l2.Banned(src) {
		t.Fatal("the peer's unban was not followed after a restart")
	}
}
