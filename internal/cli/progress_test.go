package cli

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/peertest"
)

func TestProgressText(t *testing.T) {
	for _, tc := range []struct {
		name       string
		read, size int64
		packets    uint64
		elapsed    time.Duration
		want       string
	}{
		{"start", 0, 2 << 30, 0, 0, "big.pcap.gz: 0 KB of 2.0 GB (0%)"},
		{"a quarter in", 512 << 20, 2 << 30, 12_000_000, 10 * time.Second,
			"big.pcap.gz: 512 MB of 2.0 GB (25%), 1.2 M packets/s, about 30 s left"},
		{"slow", 150 << 20, 1500 << 20, 50_000, 100 * time.Second,
			"big.pcap.gz: 150 MB of 1.5 GB (10%), 500 packets/s, about 15 min 0 s left"},
		{"hours", 100 << 20, 100 << 30, 1000, 60 * time.Second,
			"big.pcap.gz: 100 MB of 100.0 GB (0%), 17 packets/s, about 17 h 3 min left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := progressText("big.pcap.gz", tc.read, tc.size, tc.packets, tc.elapsed); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// writeCapture writes a classic pcap of n TCP SYNs from one scanner to distinct
// addresses, one a millisecond.
func writeCapture(t *testing.T, file string, n int) {
	t.Helper()
	var b bytes.Buffer
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h, 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 101) // raw IP
	b.Write(h)
	for i := range n {
		pkt := make([]byte, 40)
		pkt[0], pkt[9] = 0x45, 6
		binary.BigEndian.PutUint16(pkt[2:], 40)
		pkt[8] = 64
		copy(pkt[12:], []byte{198, 51, 100, 7})
		binary.BigEndian.PutUint32(pkt[16:], 0x0a000000|uint32(i%65536))
		binary.BigEndian.PutUint16(pkt[20:], 40000)
		binary.BigEndian.PutUint16(pkt[22:], 22)
		pkt[32], pkt[33] = 0x50, 0x02 // data offset 5, SYN
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec, uint32(1700000000+i/1000))
		binary.LittleEndian.PutUint32(rec[4:], uint32(i%1000)*1000)
		binary.LittleEndian.PutUint32(rec[8:], 40)
		binary.LittleEndian.PutUint32(rec[12:], 40)
		b.Write(rec)
		b.Write(pkt)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// openPTY returns a pseudo-terminal: the master end to read, the slave end to
// hand to gantry as its stderr.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		peertest.Missing(t, "pseudo-terminal", fmt.Sprintf("opening /dev/ptmx: %v", err))
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestAnalyzeProgressLine: on a terminal a capture over the size limit shows a
// progress line that is erased before the report; on a pipe nothing is drawn.
func TestAnalyzeProgressLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big.pcap")
	writeCapture(t, file, 200_000)
	old := progressMin
	progressMin = 1 << 20 // the file is 8 MB: as if it were over 100 MB
	t.Cleanup(func() { progressMin = old })

	master, slave := openPTY(t)
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the slave is closed
		got <- string(b)
	}()
	var stdout bytes.Buffer
	if code := analyze([]string{file, "--format", "json"}, nil, &stdout, slave); code != 0 {
		t.Fatalf("exit %d", code)
	}
	slave.Close()
	tty := <-got
	if !strings.Contains(tty, "big.pcap: ") || !strings.Contains(tty, " packets/s, about ") || !strings.HasSuffix(tty, "\r\033[K") {
		t.Errorf("terminal got %q: want a progress line, erased at the end", tty)
	}
	if !strings.Contains(stdout.String(), `"packets": 200000`) {
		t.Errorf("report %.300q lacks the 200000 packets", stdout.String())
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	if code := analyze([]string{file}, nil, io.Discard, w); code != 0 {
		t.Fatalf("exit %d", code)
	}
	w.Close()
	if piped := <-got; piped != "" {
		t.Errorf("a pipe got %q, want nothing", piped)
	}
}
