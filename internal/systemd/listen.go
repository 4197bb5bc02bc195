package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// Socket is one socket passed by the service manager: a stream socket
// (ListenStream=) or a datagram socket (ListenDatagram=).
type Socket struct {
	// Name is the socket unit's FileDescriptorName= (by default the unit's name).
	// It applies to every socket of the unit.
	Name     string
	Listener net.Listener   // a stream socket, or nil
	Packet   net.PacketConn // a datagram socket, or nil
}

func (s Socket) addr() net.Addr {
	if s.Packet != nil {
		return s.Packet.LocalAddr()
	}
	return s.Listener.Addr()
}

func (s Socket) close() {
	if s.Packet != nil {
		s.Packet.Close()
	} else {
		s.Listener.Close()
	}
}

// Listeners returns the sockets passed to this process ($LISTEN_FDS with
// $LISTEN_PID naming it, $LISTEN_FDNAMES), in order, and unsets those variables so
// that the processes gantry starts do not take the descriptors for theirs. It
// returns nothing when no socket was passed. Stream and datagram sockets can be
// served; another kind (a FIFO, a sequential-packet socket) is an error naming it.
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
		sk, err := passedSocket(fd, fdNames[i])
		if err != nil {
			for _, s := range socks {
				s.close()
			}
			for j := i + 1; j < n; j++ {
				os.NewFile(uintptr(listenFDsStart+j), "").Close()
			}
			return nil, err
		}
		socks = append(socks, sk)
	}
	return socks, nil
}

// passedSocket takes descriptor fd, named name. The net package keeps a
// close-on-exec duplicate: the inherited descriptor (not close-on-exec) is closed
// so that no child process inherits it.
func passedSocket(fd int, name string) (Socket, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q) is not a socket: %w: gantry serves ListenStream= and ListenDatagram= sockets only", fd, name, err)
	}
	switch typ {
	case unix.SOCK_STREAM:
		ln, err := net.FileListener(f)
		if err != nil {
			return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q): %w", fd, name, err)
		}
		return Socket{Name: name, Listener: ln}, nil
	case unix.SOCK_DGRAM:
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q): %w", fd, name, err)
		}
		return Socket{Name: name, Packet: pc}, nil
	}
	return Socket{}, fmt.Errorf("socket activation: descriptor %d (%q) is a socket of type %d: gantry serves ListenStream= and ListenDatagram= sockets only", fd, name, typ)
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
type Sockets struct {
	socks []Socket
}

// NewSockets holds socks until Match hands them out.
func NewSockets(socks []Socket) *Sockets {
	return &Sockets{socks: socks}
}

// Want is what one config key (such as "listen" or "tls_listen") asks of the
// passed sockets.
type Want struct {
	Key   string
	Addrs []string
	// Datagram: the key also takes datagram sockets (HTTP/3 on tls_listen).
	Datagram bool
}

// Claimed is what Match hands one config key.
type Claimed struct {
	Listeners []net.Listener
	Packets   []net.PacketConn
	// Unbound are the key's addresses that no stream socket serves, to be bound by
	// the caller.
	Unbound []string
}

// Match hands each passed socket to a config key. A socket serves the key whose
// address it is bound to, whatever its name: one .socket unit's
// FileDescriptorName= names all its sockets, so ListenStream=80 and
// ListenStream=443 in one unit share a name. A socket bound to no configured
// address serves the key its FileDescriptorName= names, if that key has an address
// at all. A wildcard address matches a wildcard of the other family on the same
// port: a .socket unit's ListenStream=80 binds [::]:80 for both families, as
// "0.0.0.0:80" or ":80" means. The sockets no key claims stay for Close.
func (s *Sockets) Match(wants ...Want) map[string]*Claimed {
	out := make(map[string]*Claimed, len(wants))
	served := make([][]bool, len(wants))
	for i, w := range wants {
		out[w.Key] = &Claimed{}
		served[i] = make([]bool, len(w.Addrs))
	}
	claim := func(i int, sk Socket) {
		c := out[wants[i].Key]
		if sk.Packet != nil {
			c.Packets = append(c.Packets, sk.Packet)
		} else {
			c.Listeners = append(c.Listeners, sk.Listener)
		}
	}
	var byName []Socket
	if s != nil {
		for _, sk := range s.socks {
			if i, j := matchAddr(wants, served, sk); i >= 0 {
				if sk.Listener != nil {
					served[i][j] = true
				}
				claim(i, sk)
			} else {
				byName = append(byName, sk)
			}
		}
	}
	var rest []Socket
	for _, sk := range byName {
		i := slices.IndexFunc(wants, func(w Want) bool {
			return w.Key == sk.Name && len(w.Addrs) > 0 && (sk.Listener != nil || w.Datagram)
		})
		if i < 0 {
			rest = append(rest, sk)
			continue
		}
		claim(i, sk)
	}
	if s != nil {
		s.socks = rest
	}
	for i, w := range wants {
		for j, a := range w.Addrs {
			if !served[i][j] {
				out[w.Key].Unbound = append(out[w.Key].Unbound, a)
			}
		}
	}
	return out
}

// matchAddr finds the want and the address of it that sk is bound to: a stream
// socket serves one address once; a datagram socket goes to a want that takes
// datagrams.
func matchAddr(wants []Want, served [][]bool, sk Socket) (int, int) {
	for i, w := range wants {
		if sk.Packet != nil && !w.Datagram {
			continue
		}
		for j, a := range w.Addrs {
			if (sk.Packet != nil || !served[i][j]) && addrMatches(a, sk.addr()) {
				return i, j
			}
		}
	}
	return -1, -1
}

// Close closes the sockets no key claimed and returns an error naming them: a
// socket the manager holds open that nobody serves would queue connections forever.
func (s *Sockets) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, sk := range s.socks {
		if sk.Packet != nil {
			errs = append(errs, fmt.Errorf("socket activation: the datagram socket %s (name %q) matches no [server] tls_listen address: gantry serves HTTP/3 on the UDP port of a tls_listen address (and not with http3 = false); add its address to tls_listen, name it with FileDescriptorName=tls_listen, or remove its ListenDatagram= from the .socket unit",
				sk.addr(), sk.Name))
		} else {
			errs = append(errs, fmt.Errorf("socket activation: the socket %s (name %q) matches no configured address: add it to [server] listen or tls_listen, name it with FileDescriptorName=listen or FileDescriptorName=tls_listen, or remove it from the .socket unit (or disable that .socket unit)",
				sk.addr(), sk.Name))
		}
		sk.close()
	}
	s.socks = nil
	return errors.Join(errs...)
}

// addrMatches reports whether the configured address addr ("host:port") is the
// address a is bound to.
func addrMatches(addr string, a net.Addr) bool {
	var ip net.IP
	var port int
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, port = a.IP, a.Port
	case *net.UDPAddr:
		ip, port = a.IP, a.Port
	default:
		return false
	}
	host, service, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(service)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p, err = net.DefaultResolver.LookupPort(ctx, a.Network(), service)
		cancel()
		if err != nil {
			return false
		}
	}
	if p != port {
		return false
	}
	if host == "" {
		return ip.IsUnspecified()
	}
	want := net.ParseIP(host)
	if want == nil {
		// A host name: the addresses it resolves to, as Listen would bind.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		cancel()
		for _, r := range ips {
			if err == nil && r.IP.Equal(ip) {
				return true
			}
		}
		return false
	}
	if want.IsUnspecified() {
		return ip.IsUnspecified()
	}
	return want.Equal(ip)
}
