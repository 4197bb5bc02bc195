package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStorageOpenToOthers names, as [tls] storage, a directory other users may
// enter: an admin's fresh mkdir or gantry's own storage left open, which gantry
// closes (0700), or a shared one (/etc/ssl/private, 0710 root:ssl-cert, holding
// other keys), which it must refuse naming the fix and leave alone. Closing that
// one, as root, would lock out every other program that reads it.
func TestStorageOpenToOthers(t *testing.T) {
	cases := []struct {
		name   string
		mode   os.FileMode
		files  []string
		closed bool
	}{
		{"a fresh mkdir", 0o755, nil, true},
		{"gantry's own storage", 0o755, []string{"ca", "certificates", "acme", "locks"}, true},
		{"/etc/ssl/private", 0o710, []string{"ssl-cert-snakeoil.key"}, false},
		{"/etc/ssl", 0o755, []string{"certs", "private", "openssl.cnf"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "shared")
			os.Mkdir(dir, 0o700)
			for _, f := range tc.files {
				os.WriteFile(filepath.Join(dir, f), nil, 0o644)
			}
			os.Chmod(dir, tc.mode)
			err := checkStorage(dir)
			fi, serr := os.Stat(dir)
			if serr != nil {
				t.Fatal(serr)
			}
			switch {
			case tc.closed && (err != nil || fi.Mode().Perm() != 0o700):
				t.Errorf("checkStorage: %v, mode %v; want it closed to 700", err, fi.Mode().Perm())
			case !tc.closed && (err == nil || !strings.Contains(err.Error(), "chmod 700")):
				t.Errorf("checkStorage: %v; want an error naming chmod 700", err)
			case !tc.closed && fi.Mode().Perm() != tc.mode:
				t.Errorf("mode now %v; want %v left alone", fi.Mode().Perm(), tc.mode)
			}
		})
	}
}
