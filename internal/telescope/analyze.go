package telescope

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// AnalyzeFile feeds every packet of the capture file name to c; name "-" reads stdin.
// A truncated or corrupt tail is a warning on warn, not an error: what came before
// it is still counted.
func AnalyzeFile(c *Classifier, name string, stdin io.Reader, warn io.Writer) error {
	var f io.Reader
	if name == "-" {
		f = stdin
	} else {
		fh, err := os.Open(name)
		if err != nil {
			return err
		}
		defer fh.Close()
		if st, err := fh.Stat(); err == nil && st.IsDir() {
			return fmt.Errorf("%s: is a directory, not a capture file", name)
		}
		f = fh
	}
	rd, err := NewReader(f)
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
	n := 0
	for {
		err := rd.Next(&rec)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var te *TruncatedError
			if errors.As(err, &te) {
				fmt.Fprintf(warn, "gantry: telescope analyze: warning: %s: %v; reporting the %d packets before it\n", name, err, n)
				return nil
			}
			return fmt.Errorf("read %s: %w", name, err)
		}
		c.Packet(rec.Timestamp, rec.LinkType, rec.Data)
		n++
	}
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
