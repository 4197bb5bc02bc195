package fastcgi

import (
	"gantry/internal/fsroot"

	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestScriptCache checks the cache of existing scripts: a hit spares the stat for
// scriptTTL, a deleted script is noticed once it runs out, and a miss is never
// cached, so a script deployed after a 404 runs at once.
func TestScriptCache(t *testing.T) {
	dir := t.TempDir()
	root, err := fsroot.Open(dir, fsroot.Inside)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	clock := time.Unix(1_000_000, 0)
	rt := &router{root: root, split: []string{".php"}, index: []string{"index.php"}, now: func() time.Time { return clock }}
	script := filepath.Join(dir, "a.php")

	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		want    routeStatus
	}{
		{name: "missing script", want: routeNotFound},
		{name: "deployed after a miss runs at once", do: func() { write(t, script) }, want: routeOK},
		{name: "deleted, still cached", do: func() { os.Remove(script) }, advance: scriptTTL - time.Millisecond, want: routeOK},
		{name: "deleted, TTL over", advance: time.Millisecond, want: routeNotFound},
		{name: "back again", do: func() { write(t, script) }, want: routeOK},
		{name: "replaced by a directory, TTL over", do: func() { os.Remove(script); os.Mkdir(script, 0o755) },
			advance: scriptTTL, want: routeNotFound},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		clock = clock.Add(st.advance)
		tg, got := rt.resolve("/a.php/info")
		if got != st.want {
			t.Fatalf("%s: status %d, want %d", st.name, got, st.want)
		}
		if got == routeOK && (tg.scriptName != "/a.php" || tg.pathInfo != "/info") {
			t.Fatalf("%s: target %+v", st.name, tg)
		}
	}
}

// TestScriptCacheBounded checks that the cache does not grow past maxScripts.
func TestScriptCacheBounded(t *testing.T) {
	dir := t.TempDir()
	root, err := fsroot.Open(dir, fsroot.Inside)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	rt := &router{root: root, split: []string{".php"}, now: time.Now}
	for i := 0; i < maxScripts+10; i++ {
		name := fmt.Sprintf("s%d.php", i)
		write(t, filepath.Join(dir, name))
		if !rt.isFile(name) {
			t.Fatalf("%s not found", name)
		}
	}
	if n := len(rt.scripts); n == 0 || n > maxScripts {
		t.Fatalf("%d cached names, want 1 to %d", n, maxScripts)
	}
}

func write(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(name, []byte("<?php\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
