package telescope

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring geometry: 4 blocks of 1 MiB. The kernel hands a block over when it is full or
// after ringTimeoutMs, so a quiet telescope still sees its packets promptly.
const (
	ringBlockSize = 1 << 20
	ringBlocks    = 4
	ringTimeoutMs = 100
	// pollInterval is how often a quiet capture notices ctx and expires idle state.
	pollInterval = 200 * time.Millisecond
)

// StartLive captures every packet arriving on iface with an AF_PACKET socket (pure Go,
// no libpcap) and classifies it until ctx ends or Close is called. It needs
// CAP_NET_RAW. Packets the host itself sends are ignored: its own RSTs to closed
// ports would otherwise look like backscatter from it.
func StartLive(ctx context.Context, iface string, opts Options, logger *slog.Logger) (*Live, error) {
	return startLive(ctx, iface, opts, logger, true)
}

// startLive uses a TPACKET_V3 memory-mapped ring when useRing is set and the kernel
// allows it (a batch of packets per wake-up, kernel timestamps), else one read per
// packet.
func startLive(ctx context.Context, iface string, opts Options, logger *slog.Logger, useRing bool) (*Live, error) {
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
	var ring []byte
	if useRing {
		ring, err = setupRing(fd)
		if err != nil {
			logger.Warn("no packet ring; reading one packet per system call", "interface", iface, "err", err)
		}
	}
	if ring == nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20) // best effort: room for bursts
		tv := unix.NsecToTimeval(int64(pollInterval))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fail("set read timeout", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		if ring != nil {
			unix.Munmap(ring)
		}
		return fail("bind", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Live{c: NewClassifier(opts), stop: cancel, done: make(chan struct{})}
	logger.Info("telescope capture started", "interface", iface, "ring", ring != nil)
	go func() {
		defer close(l.done)
		defer unix.Close(fd)
		if ring != nil {
			defer unix.Munmap(ring)
			l.closeErr = l.runRing(ctx, fd, ring)
		} else {
			l.closeErr = l.runRead(ctx, fd)
		}
		l.readStats(fd)
		if l.closeErr != nil {
			l.closeErr = fmt.Errorf("telescope: capture on %s: %w", iface, l.closeErr)
			logger.Error("telescope capture failed", "interface", iface, "err", l.closeErr)
			return
		}
		logger.Info("telescope capture stopped", "interface", iface)
	}()
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func setupRing(fd int) ([]byte, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     ringBlockSize,
		Block_nr:       ringBlocks,
		Frame_size:     1 << 11,
		Frame_nr:       ringBlockSize * ringBlocks >> 11,
		Retire_blk_tov: ringTimeoutMs,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	ring, err := unix.Mmap(fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap packet ring: %w", err)
	}
	return ring, nil
}

// runRing walks the ring's blocks in order. A block belongs to the reader while its
// status has TP_STATUS_USER; handing it back is a store of TP_STATUS_KERNEL. Each
// block is classified under one lock, so a busy capture locks once per block.
func (l *Live) runRing(ctx context.Context, fd int, ring []byte) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLERR}}
	lastStats := time.Now()
	for blk := 0; ctx.Err() == nil; {
		b := ring[blk*ringBlockSize : (blk+1)*ringBlockSize]
		// TpacketBlockDesc: version, offset_to_priv, then tpacket_hdr_v1, whose first
		// word is block_status.
		status := (*uint32)(unsafe.Pointer(&b[8]))
		if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
			_, err := unix.Poll(pfd, int(pollInterval/time.Millisecond))
			if err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("poll: %w", err)
			}
			if atomic.LoadUint32(status)&unix.TP_STATUS_USER == 0 {
				l.mu.Lock()
				l.c.Advance(time.Now().UnixNano())
				l.mu.Unlock()
			}
		} else {
			n := binary.NativeEndian.Uint32(b[12:])
			off := binary.NativeEndian.Uint32(b[16:])
			l.mu.Lock()
			for range n {
				if int(off)+28 > len(b) {
					break
				}
				h := b[off:]
				next := binary.NativeEndian.Uint32(h)
				sec := binary.NativeEndian.Uint32(h[4:])
				nsec := binary.NativeEndian.Uint32(h[8:])
				snap := binary.NativeEndian.Uint32(h[12:])
				netOff := uint32(binary.NativeEndian.Uint16(h[26:]))
				if int(off+netOff+snap) <= len(b) {
					l.c.Packet(int64(sec)*1e9+int64(nsec), LinkRaw, b[off+netOff:off+netOff+snap])
				}
				if next == 0 {
					break
				}
				off += next
			}
			l.mu.Unlock()
			atomic.StoreUint32(status, unix.TP_STATUS_KERNEL)
			blk = (blk + 1) % ringBlocks
		}
		if now := time.Now(); now.Sub(lastStats) >= time.Second {
			lastStats = now
			l.readStats(fd)
		}
	}
	return nil
}

// runRead is the fallback without a ring: one read per packet, timestamped on arrival.
func (l *Live) runRead(ctx context.Context, fd int) error {
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
			return fmt.Errorf("read: %w", err)
		}
		if now.Sub(lastStats) >= time.Second {
			lastStats = now
			l.readStats(fd)
		}
	}
	return nil
}

// readStats adds the kernel's drop counter, which resets on every read.
func (l *Live) readStats(fd int) {
	var st unix.TpacketStatsV3
	sz := uint32(unsafe.Sizeof(st))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&sz)), 0)
	if errno == 0 {
		l.mu.Lock()
		l.drops += uint64(st.Drops)
		l.mu.Unlock()
	}
}
