package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gantry/internal/supervise"
)

// cmdSource serves requests from FastCGI processes that gantry spawned, one private
// unix socket each, through the shared supervisor. Each process takes one request at
// a time (php-cgi without PHP_FCGI_CHILDREN does), and its connection is kept open
// between requests.
type cmdSource struct {
	sup         *supervise.Pool
	dir         string
	dialTimeout time.Duration

	mu     sync.Mutex
	idle   map[*supervise.Worker]*conn
	closed bool
}

// spawn starts opts.Processes copies of opts.Command and waits until each accepts
// connections on its socket.
func spawn(opts *Options, log *slog.Logger) (*cmdSource, *supervise.Pool, error) {
	bin, err := exec.LookPath(opts.Command[0])
	if err != nil {
		return nil, nil, fmt.Errorf("fastcgi: command %s: %w", opts.Command[0], err)
	}
	var cred *syscall.Credential
	if opts.User != "" {
		if os.Geteuid() != 0 {
			log.Warn("fastcgi: user applies only when gantry runs as root; the processes run as gantry's user",
				"user", opts.User)
		} else if cred, err = supervise.LookupCredential(opts.User); err != nil {
			return nil, nil, fmt.Errorf("fastcgi: user %q: %w", opts.User, err)
		}
	}
	dir, err := os.MkdirTemp("", "gantry-fcgi-")
	if err != nil {
		return nil, nil, fmt.Errorf("fastcgi: socket directory: %w", err)
	}
	if cred != nil {
		// The processes create their sockets here; gantry, as root, reaches them
		// whoever owns them. The directory stays private (0700) to that user.
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("fastcgi: socket directory for user %q: %w", opts.User, err)
		}
	}
	s := &cmdSource{dir: dir, dialTimeout: opts.DialTimeout, idle: map[*supervise.Worker]*conn{}}
	isPHP := strings.HasPrefix(filepath.Base(bin), "php")
	env := os.Environ()
	for k, v := range opts.Env {
		env = append(env, k+"="+v)
	}
	if isPHP {
		// One request at a time per process, and gantry (not php-cgi's default of 500)
		// decides when a process is recycled.
		env = append(env, "PHP_FCGI_CHILDREN=0", "PHP_FCGI_MAX_REQUESTS=0")
	}
	sup, err := supervise.Start(context.Background(), supervise.Options{
		Name:        "fastcgi " + strings.Join(opts.Command, " "),
		Size:        opts.Processes,
		Concurrency: 1,
		Command: func(w *supervise.Worker) (*exec.Cmd, error) {
			sock := filepath.Join(dir, strconv.Itoa(w.Slot)+"-"+strconv.Itoa(w.Generation)+".sock")
			os.Remove(sock)
			w.Data = sock
			args := append([]string(nil), opts.Command[1:]...)
			if isPHP {
				args = append(args, "-b", sock)
			} else {
				args = append(args, sock)
			}
			cmd := exec.Command(bin, args...)
			cmd.Env = env
			cmd.Dir = opts.Root
			return cmd, nil
		},
		Ready: func(ctx context.Context, w *supervise.Worker) error {
			return supervise.WaitDial(ctx, "unix", w.Data.(string))
		},
		Stopping: s.dropIdle,
		Exited: func(w *supervise.Worker) {
			os.Remove(w.Data.(string))
			s.dropIdle(w)
		},
		Credential:  cred,
		MaxRequests: uint64(max(opts.MaxRequests, 0)),
		Logger:      log,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("fastcgi: %w", err)
	}
	s.sup = sup
	return s, sup, nil
}

// dropIdle closes the idle connection to w, if any.
func (s *cmdSource) dropIdle(w *supervise.Worker) {
	s.mu.Lock()
	c := s.idle[w]
	delete(s.idle, w)
	s.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

func (s *cmdSource) get(ctx context.Context, fresh, check bool) (*conn, error) {
	w, err := s.sup.Acquire(ctx)
	if err != nil {
		if errors.Is(err, supervise.ErrClosed) {
			return nil, errClosed
		}
		return nil, fmt.Errorf("fastcgi: waiting for a free process: %w", err)
	}
	s.mu.Lock()
	c := s.idle[w]
	delete(s.idle, w)
	s.mu.Unlock()
	if c != nil {
		if !fresh && (!check || c.alive()) {
			return c, nil
		}
		c.nc.Close()
	}
	sock := w.Data.(string)
	nc, err := dial(ctx, "unix", sock, s.dialTimeout)
	if err != nil {
		if ctx.Err() != nil {
			// The client left before the dial: no fault of the process, which a
			// Failed would kill.
			s.sup.Release(w, supervise.OK)
			return nil, err
		}
		s.sup.Release(w, supervise.Failed)
		return nil, err
	}
	c = newConn(nc, "unix:"+sock)
	c.worker = w
	return c, nil
}

func (s *cmdSource) put(c *conn, reusable bool, outcome supervise.Outcome) {
	w := c.worker
	s.mu.Lock()
	if reusable && !s.closed {
		s.idle[w] = c
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
	s.sup.Release(w, outcome)
}

func (s *cmdSource) shutdown(ctx context.Context) error {
	// An idle process is blocked reading its kept connection: closing it first lets
	// the process see SIGTERM's end of the line at once.
	s.mu.Lock()
	s.closed = true
	for w, c := range s.idle {
		c.nc.Close()
		delete(s.idle, w)
	}
	s.mu.Unlock()
	err := s.sup.Shutdown(ctx)
	os.RemoveAll(s.dir)
	return err
}
