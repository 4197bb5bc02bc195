package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// Socket is one listening socket passed by the service manager.
type Socket struct {
	// Name is the socket unit's FileDescriptorName= (by default the unit's name).
	Name     string
	Listener net.Listener
}

// Listeners returns the sockets passed to this process ($LISTEN_FDS with
// $LISTEN_PID naming it, $LISTEN_FDNAMES), in order, and unsets those variables so
// that the processes gantry starts do not take the descriptors for theirs. It
// returns nothing when no socket was passed. Only stream sockets can be served: a
// datagram socket is an error naming it.
func Listeners() ([]Socket, error) {
	pid, nfds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	n, fdNames, err := parseListenEnv(pid, nfds, names, os.Getpid())
	if err != nil || n == 0 {
		return nil, err
	}
	socks := make([]Socket, 0, n)
	for i := range n {
		fd := listenFDsStart + i
		f := os.NewFile(uintptr(fd), fdNames[i])
		// FileListener keeps a close-on-exec duplicate: the inherited descriptor
		// (not close-on-exec) is closed so that no child process inherits it.
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, s := range socks {
				s.Listener.Close()
			}
			for j := i + 1; j < n; j++ {
				os.NewFile(uintptr(listenFDsStart+j), "").Close()
			}
			return nil, fmt.Errorf("socket activation: descriptor %d (%q): %w: gantry serves stream sockets only (ListenStream= in the .socket unit)", fd, fdNames[i], err)
		}
		socks = append(socks, Socket{Name: fdNames[i], Listener: ln})
	}
	return socks, nil
}

// parseListenEnv reads the socket-activation variables for process pid: how many
// descriptors were passed, and their names ("" when unnamed).
func parseListenEnv(pidVar, fdsVar, namesVar string, pid int) (int, []string, error) {
	if fdsVar == "" {
		return 0, nil, nil
	}
	if p, err := strconv.Atoi(pidVar); err != nil || p != pid {
		// The sockets are another process's (an ancestor's variables leaked).
		return 0, nil, nil
	}
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 || n > 1<<16 {
		return 0, nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a descriptor count", fdsVar)
	}
	names := make([]string, n)
	if namesVar != "" {
		got := strings.Split(namesVar, ":")
		if len(got) != n {
			return 0, nil, fmt.Errorf("socket activation: LISTEN_FDNAMES has %d names for LISTEN_FDS=%d", len(got), n)
		}
		copy(names, got)
	}
	return n, names, nil
}

// Sockets are the passed sockets that no configured address has claimed yet.
//
// A socket serves the config key (such as "listen" or "tls_listen") that its
// FileDescriptorName= names; a socket with another name (systemd's default is the
// unit's name) serves the key whose address it is bound to. Each configured address
// that a socket serves is not bound again; the others are bound as usual.
type Sockets struct {
	keys  []string // config keys that a FileDescriptorName= may name
	socks []Socket
}

// NewSockets holds socks for the config keys in keys.
func NewSockets(socks []Socket, keys ...string) *Sockets {
	return &Sockets{keys: keys, socks: socks}
}

// Take claims, for config key key with addresses addrs, the sockets named key and
// the unnamed sockets bound to one of addrs. A wildcard address matches a wildcard
// of the other family on the same port: a .socket unit's ListenStream=80 binds
// [::]:80 for both families, as "0.0.0.0:80" or ":80" means. It returns the claimed
// listeners and the addresses that no socket serves, to be bound by the caller.
func (s *Sockets) Take(key string, addrs []string) (lns []net.Listener, unbound []string) {
	if s == nil || len(s.socks) == 0 {
		return nil, addrs
	}
	var rest []Socket
	served := make([]bool, len(addrs))
	for _, sk := range s.socks {
		named := sk.Name == key
		if !named && s.isKey(sk.Name) {
			rest = append(rest, sk)
			continue
		}
		matched := false
		for i, a := range addrs {
			if !served[i] && addrMatches(a, sk.Listener.Addr()) {
				served[i], matched = true, true
				break
			}
		}
		if matched || named {
			lns = append(lns, sk.Listener)
		} else {
			rest = append(rest, sk)
		}
	}
	s.socks = rest
	for i, a := range addrs {
		if !served[i] {
			unbound = append(unbound, a)
		}
	}
	return lns, unbound
}

// Close closes the sockets no key claimed and returns an error naming them: a
// socket the manager holds open that nobody serves would queue connections forever.
func (s *Sockets) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, sk := range s.socks {
		errs = append(errs, fmt.Errorf("socket activation: the socket %s (name %q) matches no configured address: add it to [server] listen, name it with FileDescriptorName=listen, or remove it from the .socket unit",
			sk.Listener.Addr(), sk.Name))
		sk.Listener.Close()
	}
	s.socks = nil
	return errors.Join(errs...)
}

func (s *Sockets) isKey(name string) bool {
	for _, k := range s.keys {
		if name == k {
			return true
		}
	}
	return false
}

// addrMatches reports whether the configured address addr ("host:port") is the
// address a is bound to.
func addrMatches(addr string, a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p, err = net.DefaultResolver.LookupPort(ctx, "tcp", port)
		cancel()
		if err != nil {
			return false
		}
	}
	if p != ta.Port {
		return false
	}
	if host == "" {
		return ta.IP.IsUnspecified()
	}
	ip := net.ParseIP(host)
	if ip == nil {
		// A host name: the addresses it resolves to, as Listen would bind.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		cancel()
		for _, r := range ips {
			if err == nil && r.IP.Equal(ta.IP) {
				return true
			}
		}
		return false
	}
	if ip.IsUnspecified() {
		return ta.IP.IsUnspecified()
	}
	return ip.Equal(ta.IP)
}
