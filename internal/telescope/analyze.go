package telescope

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// AnalyzeFile feeds every packet of the capture file name to c; name "-" reads stdin.
// A truncated or corrupt tail is a warning on warn, not an error: what came before
// it is still counted.
func AnalyzeFile(c *Classifier, name string, stdin io.Reader, warn io.Writer) error {
	return AnalyzeFileProgress(c, name, stdin, warn, nil)
}

// Progress hears how far AnalyzeFileProgress has come: the bytes read from the
// file (compressed bytes when it is gzipped), its size (0 when unknown: standard
// input) and the packets so far. It is called every progressEvery packets, so
// that a caller that reads the clock does so rarely, and once more with done
// set at the end.
type Progress func(read, size int64, packets uint64, done bool)

// progressEvery is how many packets go by between calls to a Progress: at the
// millions of packets a second analyze reads, a few calls a second.
const progressEvery = 1 << 16

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// AnalyzeFileProgress is AnalyzeFile telling progress, when not nil, how far it
// has come. A gzipped capture (.pcap.gz, .pcapng.gz, or any name: it is told by
// its first bytes) is read through gzip.
func AnalyzeFileProgress(c *Classifier, name string, stdin io.Reader, warn io.Writer, progress Progress) error {
	var f io.Reader
	var size int64
	if name == "-" {
		f = stdin
	} else {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err == nil && st.IsDir() {
			return fmt.Errorf("%s: is a directory, not a capture file", name)
		}
		if err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		f = fh
	}
	counted := &countingReader{r: f}
	// The first bytes say whether it is gzip; they are handed on in front of the
	// rest rather than through a buffered reader, which would copy every byte of
	// a plain capture once more.
	head := make([]byte, len(gzipMagic))
	hn, err := io.ReadFull(counted, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return fmt.Errorf("read %s: %w", name, err)
	}
	var in io.Reader = io.MultiReader(bytes.NewReader(head[:hn]), counted)
	var gz *gzipTail
	if bytes.Equal(head[:hn], gzipMagic) {
		zr, err := gzip.NewReader(bufio.NewReaderSize(in, 64<<10))
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", name, err)
		}
		defer zr.Close()
		gz = &gzipTail{r: zr}
		in = gz
	}
	rd, err := NewReader(in)
	if err != nil {
		var te *TruncatedError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: %w", name, err)
		}
		if errors.Is(err, ErrNotCapture) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	var rec Record
	var n uint64
	if progress != nil {
		defer func() { progress(counted.n, size, n, true) }()
	}
	// One goroutine reads and classifies: sharding the classifier by source would
	// change reports, because eviction samples the whole table with one random
	// sequence, the set-memory budget and the event bound are global, the sweeps
	// that decide which sources are still open follow the total packet count, and
	// ICMP backscatter is keyed by the quoted victim, not by the packet's source.
	for {
		err := rd.Next(&rec)
		if err == io.EOF && (gz == nil || gz.err == nil) {
			return nil
		}
		if err != nil {
			var te *TruncatedError
			if errors.As(err, &te) || err == io.EOF {
				if progress != nil {
					progress(counted.n, size, n, true) // the line gone before the warning
				}
				if gz != nil && gz.err != nil {
					err = fmt.Errorf("gzip: %w", gz.err)
				}
				fmt.Fprintf(warn, "gantry: telescope analyze: warning: %s: %v; reporting the %d packets before it\n", name, err, n)
				return nil
			}
			return fmt.Errorf("read %s: %w", name, err)
		}
		c.Packet(rec.Timestamp, rec.LinkType, rec.Data)
		n++
		if progress != nil && n%progressEvery == 0 {
			progress(counted.n, size, n, false)
		}
	}
}

// gzipTail reads a gzip stream whose end may be cut off (a capture copied while
// it was written) or damaged (a bad checksum, garbage after the last member) as
// a plain file cut off: the packets before it are reported, with a warning. err
// keeps the damage, to name it in that warning.
type gzipTail struct {
	r   io.Reader
	err error
}

func (g *gzipTail) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		if err != io.ErrUnexpectedEOF {
			g.err = err
		}
		err = io.EOF
	}
	return n, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ParsePrefix parses a CIDR, or a single address as its /32 or /128, for --dark and
// the [telescope] dark config key.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("dark prefix %q: not an address or CIDR", s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("dark prefix %q: not a CIDR", s)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("dark prefix %q: an IPv4-mapped prefix needs at least /96", s)
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
	}
	return p.Masked(), nil
}
