// Package systemd speaks the protocols a service manager offers a daemon, written
// from their documentation with no dependency: readiness notification
// (sd_notify(3): datagrams to $NOTIFY_SOCKET), socket activation (sd_listen_fds(3):
// listening sockets passed from descriptor 3 on) and the journal's stream
// (sd-daemon(3): "<N>" priority prefixes). Outside systemd every call is a no-op.
package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sendTimeout bounds one notification: a manager that stopped reading must not
// stall a reload or a shutdown.
const sendTimeout = 2 * time.Second

// Notifier sends state changes to the service manager. The zero value and nil
// send nothing.
type Notifier struct {
	mu       sync.Mutex
	conn     *net.UnixConn
	watchdog time.Duration
}

// NewNotifier connects to $NOTIFY_SOCKET when it is set, and reads the watchdog
// interval ($WATCHDOG_USEC, when $WATCHDOG_PID is this process or unset). It
// unsets these variables so that the processes gantry starts (CGI scripts, workers)
// neither inherit them nor notify in gantry's name.
func NewNotifier() (*Notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	usec, wpid := os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID")
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	n := &Notifier{}
	var wdErr error
	if usec != "" && (wpid == "" || wpid == strconv.Itoa(os.Getpid())) {
		us, err := strconv.ParseUint(usec, 10, 63)
		if err != nil || us == 0 {
			wdErr = fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds; no watchdog pings", usec)
		} else {
			n.watchdog = time.Duration(us) * time.Microsecond
		}
	}
	if path == "" {
		return n, wdErr
	}
	// Go maps a leading "@" to Linux's abstract namespace, as sd_notify does.
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return n, fmt.Errorf("NOTIFY_SOCKET=%q: want an absolute path or an @abstract name", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return n, fmt.Errorf("NOTIFY_SOCKET %s: %w", path, err)
	}
	n.conn = conn
	return n, wdErr
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.conn != nil }

// WatchdogInterval is how often Watchdog must be called (half the manager's
// timeout, as sd_watchdog_enabled(3) advises), or 0 when no watchdog is set.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil || n.conn == nil {
		return 0
	}
	return n.watchdog / 2
}

// Notify sends the newline-separated assignments (sd_notify(3)) in one datagram.
func (n *Notifier) Notify(state ...string) error {
	if !n.Enabled() {
		return nil
	}
	msg := strings.Join(state, "\n")
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conn.SetWriteDeadline(time.Now().Add(sendTimeout))
	if _, err := n.conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", msg, err)
	}
	return nil
}

// Ready says the listeners accept and the workers run.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Notify("READY=1")
	}
	return n.Notify("READY=1", status1(status))
}

// Reloading says a reload started; Ready must follow when it ends, whatever the
// outcome. MONOTONIC_USEC lets the manager tell this reload from an older one.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: monotonic clock: %w", err)
	}
	usec := uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
	return n.Notify("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatUint(usec, 10))
}

// Stopping says a graceful shutdown started.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Status sets the one line `systemctl status` shows.
func (n *Notifier) Status(status string) error { return n.Notify(status1(status)) }

// Watchdog tells the manager the service is alive.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Close closes the connection to the manager.
func (n *Notifier) Close() error {
	if !n.Enabled() {
		return nil
	}
	return n.conn.Close()
}

// status1 makes a STATUS= assignment of one line: a newline would start another
// assignment, and a message is the manager's to parse, not the status's.
func status1(s string) string {
	return "STATUS=" + strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
