package fsroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"gantry/internal/peertest"
)

// tree makes a root with links the way Debian installs web applications: into
// /usr/share/javascript-like directories outside the root, with the link and its
// target owned alike, plus a link to a file of another owner and one inside.
func tree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root, share, other := filepath.Join(base, "www"), filepath.Join(base, "share"), filepath.Join(base, "other")
	for _, d := range []string{root, share, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "plain.txt"), "plain")
	write(filepath.Join(share, "jquery.js"), "jquery")
	write(filepath.Join(other, "secret.txt"), "secret")
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(share, "javascript")
	link(filepath.Join(other, "secret.txt"), "secret.txt")
	link("plain.txt", "alias.txt")
	if os.Geteuid() == 0 {
		// nobody's file, behind a link of root's: what SymLinksIfOwnerMatch refuses.
		if err := os.Chown(filepath.Join(other, "secret.txt"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestModes opens the same names under each policy. Every mode refuses names
// that climb out with "..": only links are what the modes differ on.
func TestModes(t *testing.T) {
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "the owner check needs files of two owners (chown)")
	}
	root := tree(t)
	const (
		ok      = ""
		refused = "refused"
	)
	cases := []struct {
		name string
		want map[Mode]string
	}{
		{"plain.txt", map[Mode]string{Inside: ok, Owner: ok, Follow: ok}},
		{"alias.txt", map[Mode]string{Inside: ok, Owner: ok, Follow: ok}},
		{"javascript/jquery.js", map[Mode]string{Inside: refused, Owner: ok, Follow: ok}},
		{"secret.txt", map[Mode]string{Inside: refused, Owner: refused, Follow: ok}},
		{"../share/jquery.js", map[Mode]string{Inside: refused, Owner: refused, Follow: refused}},
		{"/etc/passwd", map[Mode]string{Inside: refused, Owner: refused, Follow: refused}},
		{"javascript/../../share/jquery.js", map[Mode]string{Inside: refused, Owner: refused, Follow: refused}},
	}
	for _, mode := range []Mode{Inside, Owner, Follow} {
		r, err := Open(root, mode)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		for _, c := range cases {
			f, err := r.Open(c.name)
			_, serr := r.Stat(c.name)
			got := ok
			if err != nil {
				got = refused
				f = nil
			} else {
				f.Close()
			}
			if (serr != nil) != (err != nil) {
				t.Errorf("mode %d, %s: Open err %v but Stat err %v", mode, c.name, err, serr)
			}
			if got != c.want[mode] {
				t.Errorf("mode %d, %s: got %q (err %v), want %q", mode, c.name, got, err, c.want[mode])
			}
		}
	}
	r, _ := Open(root, Owner)
	defer r.Close()
	if _, err := r.Open("secret.txt"); !errors.Is(err, ErrLinkOwner) {
		t.Errorf("owner mode on a link to another owner's file: err %v, want ErrLinkOwner", err)
	}
	if _, err := r.Open("nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err %v, want ErrNotExist", err)
	}
}
