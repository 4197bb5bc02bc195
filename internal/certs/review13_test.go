package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/certmagic"

	"gantry/internal/config"
)

// A first start that stopped between writing the internal CA's root.key and its
// root.pem (killed, disk full) leaves a key that no certificate, and so no
// device, trusts. The next start must complete or replace that root, not fail
// for ever with "file exists".
func TestReviewOrphanRootKey(t *testing.T) {
	storage := t.TempDir()
	if err := os.MkdirAll(filepath.Join(storage, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key string }{
		{"empty key", ""},
		{"key written", "real"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(RootPath(storage))
			key := []byte(tc.key)
			if tc.key == "real" {
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if key, err = certmagic.PEMEncodePrivateKey(k); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(rootKeyPath(storage), key, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{TLS: config.TLS{Storage: storage}, Sites: []config.Site{{Hosts: []string{"localhost"}}}}
			m, err := New(cfg, Options{})
			if err != nil {
				t.Fatalf("start after an interrupted first start: %v", err)
			}
			m.Stop()
			if _, err := os.Stat(RootPath(storage)); err != nil {
				t.Errorf("no root certificate after the start: %v", err)
			}
		})
	}
}
