package basicauth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"gantry/internal/passhash"
)

// maxFile bounds an htpasswd file: it is read whole at start and on every reload.
const maxFile = 4 << 20

// users maps a user name to its password hash.
type users map[string]*passhash.Hash

// lineError is one bad line of an htpasswd file.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// weak names the hash schemes htpasswd and older tools write that gantry refuses:
// each is cheap enough to crack from a stolen file (Apache's own documentation
// calls SHA-1 and crypt insecure; MD5-crypt falls to a GPU in hours).
var weak = []struct{ prefix, name string }{
	{"$apr1$", "MD5-crypt ($apr1$)"},
	{"$1$", "MD5-crypt ($1$)"},
	{"{SHA}", "SHA-1 ({SHA})"},
	{"{SSHA}", "salted SHA-1 ({SSHA})"},
	{"$5$", "SHA-256-crypt ($5$)"},
	{"$6$", "SHA-512-crypt ($6$)"},
	{"$argon2i$", "argon2i (gantry takes argon2id)"},
	{"$argon2d$", "argon2d (gantry takes argon2id)"},
}

// parseHtpasswd reads "user:hash" lines; blank lines and lines starting with "#"
// are skipped. It returns the users of the good lines and an error for each bad
// one, naming its line (never its hash).
func parseHtpasswd(r io.Reader) (users, []error) {
	u := users{}
	firstLine := map[string]int{}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if t := strings.TrimLeft(line, " \t"); t == "" || t[0] == '#' {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, &lineError{n, fmt.Sprintf(format, args...)})
		}
		name, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			bad(`not "user:hash"`)
			continue
		case name == "":
			bad("no user name before the colon")
			continue
		case !printable(name):
			bad("the user name has a control character or is not UTF-8")
			continue
		case firstLine[name] != 0:
			bad("user %q is also on line %d", name, firstLine[name])
			continue
		}
		h, err := parseHash(hash)
		if err != nil {
			bad("user %q: %v; make a line with `gantry hash-password --htpasswd %s`", name, err, name)
			continue
		}
		firstLine[name] = n
		u[name] = h
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &lineError{n + 1, err.Error()})
	}
	return u, errs
}

// parseHash reads one line's hash: bcrypt or argon2id, not too costly to check on
// every request.
func parseHash(hash string) (*passhash.Hash, error) {
	for _, w := range weak {
		if strings.HasPrefix(hash, w.prefix) {
			return nil, fmt.Errorf("%s is weak and not accepted", w.name)
		}
	}
	if !strings.HasPrefix(hash, "$2") && !strings.HasPrefix(hash, "$argon2id$") {
		return nil, errors.New("plain text or DES crypt, not accepted: want bcrypt ($2y$) or argon2id")
	}
	h, err := passhash.Parse(hash)
	if err != nil {
		return nil, err
	}
	if h.Heavy() {
		return nil, errors.New("the hash is too costly to check on every request (bcrypt cost above 14, argon2id above 64 MiB or 10 passes)")
	}
	return h, nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// loadHtpasswd reads and parses the file at path: an error for a file that
// cannot be read, is too large, holds a bad line, or no user at all.
func loadHtpasswd(path string) (users, []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{fmt.Errorf("%w: create it with `gantry hash-password --htpasswd USER >> %s`", unwrapPath(err), path)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, []error{errors.New("not a regular file")}
	} else if err == nil && fi.Size() > maxFile {
		return nil, []error{fmt.Errorf("larger than %d MiB: not an htpasswd file", maxFile>>20)}
	}
	u, errs := parseHtpasswd(io.LimitReader(f, maxFile+1))
	if len(errs) > 0 {
		return nil, errs
	}
	if len(u) == 0 {
		return nil, []error{fmt.Errorf("no users: add one with `gantry hash-password --htpasswd USER >> %s`", path)}
	}
	return u, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lineCost is the bcrypt cost of Line's hashes: htpasswd -B's default is 5, which
// modern hardware checks too fast; 10 takes tens of milliseconds.
const lineCost = 10

// Line makes an htpasswd line for user with a bcrypt hash of pw. bcrypt rather
// than argon2id: the file then works with Apache, nginx and Caddy too, and a
// check takes 4 KiB of memory rather than argon2id's 19 MiB, which matters when
// every uncached request may need one.
func Line(user, pw string) (string, error) {
	switch {
	case user == "" || strings.Contains(user, ":") || !printable(user):
		return "", fmt.Errorf("user name %q: want a name without colons or control characters", user)
	case pw == "":
		return "", errors.New("empty password")
	case len(pw) > 72:
		return "", errors.New("password longer than 72 bytes, which bcrypt cannot take")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), lineCost)
	if err != nil {
		return "", err
	}
	return user + ":" + string(h), nil
}
