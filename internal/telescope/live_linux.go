package telescope

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StartLive captures every packet arriving on iface with an AF_PACKET socket (pure Go,
// no libpcap) and classifies it until ctx ends or Close is called. It needs
// CAP_NET_RAW. Packets the host itself sends are ignored: its own RSTs to closed
// ports would otherwise look like backscatter from it.
func StartLive(ctx context.Context, iface string, opts Options, logger *slog.Logger) (*Live, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("telescope: interface %q: %w", iface, err)
	}
	// SOCK_DGRAM hands over the network-layer packet on every kind of link (Ethernet,
	// tun, loopback); the IP version nibble then tells IPv4 from IPv6.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("telescope: capture on %s needs root or CAP_NET_RAW: %w", iface, err)
		}
		return nil, fmt.Errorf("telescope: packet socket for %s: %w", iface, err)
	}
	fail := func(what string, err error) (*Live, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("telescope: capture on %s: %s: %w", iface, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		logger.Warn("kernel cannot ignore outgoing packets; the host's own replies will be counted", "interface", iface, "err", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20) // best effort: a bigger burst buffer
	// The read timeout is how often a quiet capture notices ctx and expires idle state.
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("set read timeout", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Live{c: NewClassifier(opts), stop: cancel, done: make(chan struct{})}
	logger.Info("telescope capture started", "interface", iface)
	go l.run(ctx, fd, iface, logger)
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (l *Live) run(ctx context.Context, fd int, iface string, logger *slog.Logger) {
	defer close(l.done)
	defer unix.Close(fd)
	buf := make([]byte, 1<<16)
	lastStats := time.Now()
	for ctx.Err() == nil {
		n, err := unix.Read(fd, buf)
		now := time.Now()
		switch {
		case err == nil && n > 0:
			l.mu.Lock()
			l.c.Packet(now.UnixNano(), LinkRaw, buf[:n])
			l.mu.Unlock()
		case err == nil, errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			l.mu.Lock()
			l.c.Advance(now.UnixNano())
			l.mu.Unlock()
		default:
			l.closeErr = fmt.Errorf("telescope: read from %s: %w", iface, err)
			logger.Error("telescope capture stopped", "interface", iface, "err", err)
			return
		}
		if now.Sub(lastStats) >= time.Second {
			lastStats = now
			l.readStats(fd)
		}
	}
	l.readStats(fd)
	logger.Info("telescope capture stopped", "interface", iface)
}

// readStats adds the kernel's drop counter, which resets on every read.
func (l *Live) readStats(fd int) {
	var st unix.TpacketStats
	sz := uint32(unsafe.Sizeof(st))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&sz)), 0)
	if errno == 0 {
		l.mu.Lock()
		l.drops += uint64(st.Drops)
		l.mu.Unlock()
	}
}
