package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// manager is the service manager's end of $NOTIFY_SOCKET: a datagram socket of the
// test's own.
type manager struct {
	t    *testing.T
	conn *net.UnixConn
}

func newManager(t *testing.T, name string) *manager {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return &manager{t: t, conn: conn}
}

func (m *manager) next() string {
	m.t.Helper()
	buf := make([]byte, 4096)
	m.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := m.conn.Read(buf)
	if err != nil {
		m.t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifySequence(t *testing.T) {
	for _, tc := range []struct{ name, sock string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@gantry-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, tc.sock)
			t.Setenv("WATCHDOG_USEC", "3000000")
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			n, err := NewNotifier()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("%s=%q still set: child processes would inherit it", k, v)
				}
			}
			if got := n.WatchdogInterval(); got != 1500*time.Millisecond {
				t.Errorf("watchdog interval %v, want half of WATCHDOG_USEC", got)
			}
			n.Ready("serving 2 listeners\nand more")
			if got := m.next(); got != "READY=1\nSTATUS=serving 2 listeners and more" {
				t.Errorf("ready: %q", got)
			}
			n.Reloading()
			got := m.next()
			lines := strings.Split(got, "\n")
			if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Fatalf("reloading: %q", got)
			}
			if us, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us == 0 {
				t.Errorf("MONOTONIC_USEC not a positive number: %q", lines[1])
			}
			n.Watchdog()
			if got := m.next(); got != "WATCHDOG=1" {
				t.Errorf("watchdog: %q", got)
			}
			n.Status("1.5 req/s")
			if got := m.next(); got != "STATUS=1.5 req/s" {
				t.Errorf("status: %q", got)
			}
			n.Stopping()
			if got := m.next(); got != "STOPPING=1" {
				t.Errorf("stopping: %q", got)
			}
		})
	}
}

func TestNotifierEnv(t *testing.T) {
	cases := []struct {
		name, socket, usec, pid string
		enabled, wantErr        bool
		watchdog                time.Duration
	}{
		{name: "outside systemd"},
		{name: "watchdog for another process", socket: "sock", usec: "1000000", pid: "1", enabled: true},
		{name: "watchdog without pid", socket: "sock", usec: "1000000", enabled: true, watchdog: 500 * time.Millisecond},
		{name: "watchdog not a number", socket: "sock", usec: "soon", enabled: true, wantErr: true},
		{name: "relative socket path", socket: "relative/notify", wantErr: true},
		{name: "no one listens", socket: "/nonexistent/notify", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.socket == "sock" {
				newManager(t, filepath.Join(t.TempDir(), "sock"))
			} else {
				t.Setenv("NOTIFY_SOCKET", tc.socket)
			}
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			n, err := NewNotifier()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			defer n.Close()
			if n.Enabled() != tc.enabled || n.WatchdogInterval() != tc.watchdog {
				t.Errorf("enabled %v watchdog %v, want %v %v", n.Enabled(), n.WatchdogInterval(), tc.enabled, tc.watchdog)
			}
			if err := n.Ready("x"); err != nil {
				t.Errorf("ready: %v", err)
			}
		})
	}
	var nilN *Notifier
	if nilN.Enabled() || nilN.Ready("x") != nil || nilN.Close() != nil {
		t.Error("a nil notifier must do nothing")
	}
}
