package fastcgi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	cred, err := supervise.RunAs(opts.User, opts.Group)
	if err != nil {
		return nil, nil, fmt.Errorf("fastcgi: %w", err)
	}
	limits := supervise.Limits{Memory: int64(opts.MaxMemory), CPU: opts.MaxCPU.D()}
	if err := limits.Check(cred); err != nil {
		return nil, nil, fmt.Errorf("fastcgi: %w", err)
	}
	// gantry binds each process's socket here and hands it over as the process's
	// stdin, so the directory stays gantry's alone (0700): no process, whatever
	// user it runs as, can reach another's socket, and gantry needs no right over
	// the processes' files.
	dir, err := os.MkdirTemp("", "gantry-fcgi-")
	if err != nil {
		return nil, nil, fmt.Errorf("fastcgi: socket directory: %w", err)
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
			lf, err := listenFile(sock)
			if err != nil {
				return nil, err
			}
			w.Data = sock
			cmd := exec.Command(bin, opts.Command[1:]...)
			cmd.Env = env
			cmd.Dir = opts.Root
			// FCGI_LISTENSOCK_FILENO: the FastCGI specification's way, and
			// mod_fcgid's, to give a spawned application its listening socket.
			cmd.Stdin = lf
			return cmd, nil
		},
		Ready: func(ctx context.Context, w *supervise.Worker) error {
			return ready(ctx, w.Data.(string))
		},
		Stopping: s.dropIdle,
		Exited: func(w *supervise.Worker) {
			os.Remove(w.Data.(string))
			s.dropIdle(w)
		},
		Credential:  cred,
		PrivateTmp:  opts.Env["TMPDIR"] == "",
		Limits:      limits,
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

// ready waits until the process answers FCGI_GET_VALUES on its socket. A connect
// alone proves nothing: gantry bound the socket, so the kernel queues connections
// before the process runs, and even when it is not a FastCGI program at all.
func ready(ctx context.Context, sock string) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("dial %s: %w", sock, err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	timeout := time.Minute
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if _, err := getValues(nc, timeout, "FCGI_MPXS_CONNS"); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (is it a FastCGI program?)", err)
	}
	return nil
}

// listenFile binds a unix socket at path and returns it as a file to hand to a child.
func listenFile(path string) (*os.File, error) {
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listener %s: %w", path, err)
	}
	return f, nil
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
