// Package passhash makes and checks the password hashes gantry accepts: bcrypt
// ($2a$, $2b$, $2y$) and argon2id in the PHC string format. The dashboard's login
// and basic auth share it, and share its bound on hashes computed at once.
package passhash

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of New: OWASP's recommendation (19 MiB, 2 passes, 1 lane),
// cheap enough for a small VPS, costly for a password cracker.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// ErrFormat: the string is not a hash gantry accepts.
var ErrFormat = errors.New("not a bcrypt ($2b$...) or argon2id ($argon2id$...) hash; make one with `gantry hash-password`")

// Hash is a parsed password hash.
type Hash struct {
	bcrypt     []byte
	salt, key  []byte
	mem, iters uint32
	threads    uint8
}

// New returns an argon2id hash of pw in the PHC string format.
func New(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Parse reads a bcrypt or argon2id hash. Parameters that would make one check
// take minutes or gigabytes are refused: a hash is checked on every login.
func Parse(h string) (*Hash, error) {
	if strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$") {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrFormat, err)
		}
		return &Hash{bcrypt: []byte(h)}, nil
	}
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, ErrFormat
	}
	var v int
	var p Hash
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, fmt.Errorf("argon2id version %q: want v=%d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.mem, &p.iters, &p.threads); err != nil ||
		p.mem < 8 || p.mem > 4<<20 || p.iters < 1 || p.iters > 100 || p.threads < 1 {
		return nil, fmt.Errorf("argon2id parameters %q: %w", parts[3], ErrFormat)
	}
	var err1, err2 error
	p.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	p.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 || len(p.key) > 1024 {
		return nil, ErrFormat
	}
	return &p, nil
}

// Verify reports whether pw matches the hash, in time that does not depend on
// how much of it matches.
func (p *Hash) Verify(pw string) bool {
	if p.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(p.bcrypt, []byte(pw)) == nil
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.iters, p.mem, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// Heavy reports whether one check of p costs more than about a second of a core
// or 64 MiB (bcrypt cost above 14, argon2id above 64 MiB or 10 passes): fine for
// one admin login, too much for a password that comes with every request.
func (p *Hash) Heavy() bool {
	if p.bcrypt != nil {
		cost, _ := bcrypt.Cost(p.bcrypt)
		return cost > 14
	}
	return p.mem > 64<<10 || p.iters > 10
}

// Slots bounds the password hashes computed at once in the process: each argon2id
// takes its m parameter in memory (19 MiB with New's) and a bcrypt check tens of
// milliseconds of a core, so a burst of logins waits for a slot rather than add up.
var Slots = make(chan struct{}, 2)

// ErrBusy: every hash slot stayed taken for the wait.
var ErrBusy = errors.New("too many password checks at once")

// Acquire takes a slot, waiting at most wait (or until ctx ends), and returns the
// function that gives it back.
func Acquire(ctx context.Context, wait time.Duration) (release func(), err error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case Slots <- struct{}{}:
		return func() { <-Slots }, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ErrBusy
	}
}
