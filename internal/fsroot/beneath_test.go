package fsroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBeneathAgreesWithOSRoot opens and stats names below the top level both
// through openat2 (RESOLVE_BENEATH) and through os.Root, and requires the same
// file or the same kind of refusal from each: the kernel's rule must be exactly
// the one os.Root enforces.
func TestBeneathAgreesWithOSRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "www")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
	must(os.MkdirAll(filepath.Join(base, "outside"), 0o755))
	must(os.WriteFile(filepath.Join(root, "a", "b", "f.txt"), []byte("f"), 0o644))
	must(os.WriteFile(filepath.Join(root, "a", "g.txt"), []byte("g"), 0o644))
	must(os.WriteFile(filepath.Join(base, "outside", "s.txt"), []byte("s"), 0o644))
	must(os.Symlink("b", filepath.Join(root, "a", "tob")))                                   // a directory inside
	must(os.Symlink("../g.txt", filepath.Join(root, "a", "b", "up.txt")))                    // up, still inside
	must(os.Symlink("../../../outside/s.txt", filepath.Join(root, "a", "b", "out.txt")))     // up and out
	must(os.Symlink(filepath.Join(root, "a", "g.txt"), filepath.Join(root, "a", "abs.txt"))) // absolute, to inside
	must(os.Symlink("/proc/self/root/etc/passwd", filepath.Join(root, "a", "magic")))        // through a magic link
	must(os.Symlink("loop2", filepath.Join(root, "a", "loop1")))
	must(os.Symlink("loop1", filepath.Join(root, "a", "loop2")))
	must(os.Symlink("../outside", filepath.Join(root, "a", "outdir")))

	names := []string{
		"a/g.txt", "a/b/f.txt", "a/tob/f.txt", "a/b/up.txt", "a/b/out.txt", "a/abs.txt",
		"a/magic", "a/loop1", "a/outdir/s.txt", "a/b/../g.txt", "a/b/../../a/g.txt",
		"a/../../outside/s.txt", "a/./g.txt", "a//g.txt", "a/g.txt/", "a/b/", "a/b",
		"a/nothing", "a/g.txt/x", "/a/g.txt", "a/b/../../..", "a/\x00",
	}
	r, err := Open(root, Inside)
	must(err)
	t.Cleanup(func() { r.Close() })
	if r.fd < 0 {
		t.Fatal("no descriptor for openat2: the fast path is not under test")
	}
	kind := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, fs.ErrNotExist):
			return "not exist"
		case strings.Contains(err.Error(), "escapes from parent"), errors.Is(err, syscall.ELOOP),
			errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EINVAL), errors.Is(err, fs.ErrInvalid):
			// os.Root reports some of these as one another (a loop as ELOOP or
			// as an escape); a client gets 404 for each of them.
			return "refused"
		}
		return "other: " + err.Error()
	}
	same := func(a, b fs.FileInfo) bool { return a == nil && b == nil || a != nil && b != nil && os.SameFile(a, b) }
	for _, name := range names {
		f, ok, err := r.openBeneath(name, os.O_RDONLY, 0)
		if !ok {
			t.Fatalf("%q: openat2 not used", name)
		}
		var got fs.FileInfo
		if err == nil {
			got, _ = f.Stat()
			f.Close()
		}
		g, werr := r.in.Open(name)
		var want fs.FileInfo
		if werr == nil {
			want, _ = g.Stat()
			g.Close()
		}
		if kind(err) != kind(werr) || !same(got, want) {
			t.Errorf("open %q: openat2 %v (%s), os.Root %v (%s)", name, err, kind(err), werr, kind(werr))
		}
		sfi, _, serr := r.statBeneath(name)
		wfi, wserr := r.in.Stat(name)
		if kind(serr) != kind(wserr) || !same(sfi, wfi) {
			t.Errorf("stat %q: openat2 %v (%s), os.Root %v (%s)", name, serr, kind(serr), wserr, kind(wserr))
		}
	}
}
