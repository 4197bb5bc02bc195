// Package adminsock is the admin API's private unix socket: `gantry reload`
// authenticates by being the user gantry runs as (or root), which the kernel
// vouches for (SO_PEERCRED), instead of by the dashboard password.
package adminsock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Name is the socket's file name in the runtime directory.
const Name = "admin.sock"

// RuntimeDir is where gantry keeps its socket: $RUNTIME_DIRECTORY (systemd's
// RuntimeDirectory=), else $XDG_RUNTIME_DIR/gantry, else /run/gantry for root,
// else gantry-<uid> in the temporary directory.
func RuntimeDir() string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		// systemd lists several directories separated by colons
		d, _, _ = strings.Cut(d, ":")
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "gantry")
	}
	if os.Geteuid() == 0 {
		return "/run/gantry"
	}
	return filepath.Join(os.TempDir(), "gantry-"+strconv.Itoa(os.Geteuid()))
}

// Path is the socket's path: RuntimeDir()/admin.sock.
func Path() string { return filepath.Join(RuntimeDir(), Name) }

// ErrInUse says another running gantry answers on the socket.
var ErrInUse = errors.New("another running gantry answers on it")

// Listen creates the socket at path for a gantry that runs (or is about to run)
// as uid and gid: its directory 0700 and the socket 0600, both owned by them. A
// stale socket (nobody answers) is replaced; a live one is ErrInUse. Only peers
// running as uid or as root get through Accept; refused, when set, hears of the
// others.
func Listen(path string, uid, gid int, refused func(peerUID int)) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := ensureDir(dir, uid, gid); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin socket %s: exists and is not a socket; remove it", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %s: %w (give this one its own RUNTIME_DIRECTORY)", path, ErrInUse)
		}
		// left behind by a gantry that was killed
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin socket %s: remove the stale socket: %w", path, err)
		}
	}
	// No other user may connect in the moment between bind and chmod: the
	// directory is theirs alone already.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := chown(path, uid, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return &listener{Listener: ln, uid: uid, refused: refused}, nil
}

// ensureDir makes dir 0700 and owned by uid, or checks that it already is: a
// directory someone else owns (a squatter in /tmp) is refused.
func ensureDir(dir string, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("admin socket directory %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("admin socket directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("admin socket directory %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("admin socket directory %s: not a directory", dir)
	}
	me := os.Geteuid()
	if int(st.Uid) != me && int(st.Uid) != uid {
		return fmt.Errorf("admin socket directory %s: owned by uid %d, not by gantry's user (uid %d); remove it or set RUNTIME_DIRECTORY", dir, st.Uid, uid)
	}
	if int(st.Uid) != uid {
		if err := chown(dir, uid, gid); err != nil {
			return fmt.Errorf("admin socket directory %s: %w", dir, err)
		}
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("admin socket directory %s: %w", dir, err)
		}
	}
	return nil
}

// chown gives path to uid and gid, unless they are gantry's own already.
func chown(path string, uid, gid int) error {
	if uid == os.Geteuid() && gid == os.Getegid() {
		return nil
	}
	return os.Lchown(path, uid, gid)
}

// listener lets through only the peers the kernel says run as uid or root.
type listener struct {
	net.Listener
	uid     int
	refused func(int)
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer, err := peerUID(c)
		if err == nil && (peer == l.uid || peer == 0) {
			return c, nil
		}
		c.Close()
		if l.refused != nil {
			l.refused(peer)
		}
	}
}

// peerUID is the uid of the process at the other end of a unix connection.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix connection")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// Usable reports whether the client may use the socket at path: it exists, is a
// socket, and belongs to the caller (uid me) or the caller is root. A socket of
// another user is refused rather than trusted: whoever made it would answer.
func Usable(path string, me int) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("admin socket %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != fs.ModeSocket || !ok {
		return false, fmt.Errorf("admin socket %s: not a socket", path)
	}
	if me != 0 && int(st.Uid) != me {
		return false, fmt.Errorf("admin socket %s: owned by uid %d, not by you (uid %d): run gantry reload as the user gantry runs as, or as root", path, st.Uid, me)
	}
	return true, nil
}

// Client is an HTTP client whose every request goes to the socket at path.
func Client(path string, timeout time.Duration) *http.Client {
	var d net.Dialer
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", path) },
	}}
}

type localKey struct{}

// WithLocal marks ctx as a request that came through the socket.
func WithLocal(ctx context.Context) context.Context { return context.WithValue(ctx, localKey{}, true) }

// Local reports whether a request's context came through the socket: its peer
// is gantry's own user or root.
func Local(ctx context.Context) bool {
	v, _ := ctx.Value(localKey{}).(bool)
	return v
}
