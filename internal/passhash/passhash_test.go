package passhash

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashes(t *testing.T) {
	argon, err := New("hunter2-but-longer")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(argon, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash = %s", argon)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("hunter2-but-longer"), bcrypt.MinCost)
	y := "$2y$" + string(bc[4:]) // htpasswd -B writes $2y$
	for _, h := range []string{argon, string(bc), y} {
		p, err := Parse(h)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if !p.Verify("hunter2-but-longer") || p.Verify("hunter2") || p.Verify("") {
			t.Fatalf("%s verifies wrongly", h)
		}
	}
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"md5-crypt", "$1$md5crypt$x"},
		{"argon2i, not argon2id", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"},
		{"argon2id with 1 KiB", "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"},
		{"argon2id with bad base64", "$argon2id$v=19$m=19456,t=2,p=1$!!$??"},
		{"bcrypt cost 99", "$2b$99$xx"},
	}
	for _, tc := range tests {
		if _, err := Parse(tc.hash); err == nil {
			t.Errorf("%s: %q accepted", tc.name, tc.hash)
		}
	}
}

func TestHeavy(t *testing.T) {
	tests := []struct {
		name, hash string
		heavy      bool
	}{
		{"argon2id as New makes it", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA", false},
		{"argon2id with 1 GiB", "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA", true},
		{"argon2id with 50 passes", "$argon2id$v=19$m=19456,t=50,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA", true},
		{"bcrypt cost 10", "$2y$10$abcdefghijklmnopqrstuu5Zv4/wfV8AnbCJkBkQmWv7Q1NVmUc6y", false},
		{"bcrypt cost 20", "$2y$20$abcdefghijklmnopqrstuu5Zv4/wfV8AnbCJkBkQmWv7Q1NVmUc6y", true},
	}
	for _, tc := range tests {
		p, err := Parse(tc.hash)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.Heavy() != tc.heavy {
			t.Errorf("%s: Heavy() = %v, want %v", tc.name, !tc.heavy, tc.heavy)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA") // argon2id, small
	f.Add("$2b$04$abcdefghijklmnopqrstuu5Zv4/wfV8AnbCJkBkQmWv7Q1NVmUc6y")                           // bcrypt cost 4
	f.Add("$argon2id$v=19$m=99999999,t=2,p=1$$")                                                    // absurd memory
	f.Fuzz(func(t *testing.T, h string) {
		p, err := Parse(h)
		if err != nil {
			return
		}
		if p.bcrypt == nil && (p.mem > 4<<20 || p.iters > 100 || len(p.key) > 1024) {
			t.Fatalf("accepted a hash that would take forever to verify: %+v", p)
		}
	})
}
