package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"gantry/internal/telescope"
)

// progressMin is the capture size from which `telescope analyze` shows a
// progress line: smaller files are read in a few seconds.
var progressMin int64 = 100 << 20

// progressEvery is the least time between two updates of the line.
const progressEvery = 250 * time.Millisecond

// progressFor returns the progress line for reading capture name, or nil when
// stderr is not a terminal (a pipe, a file, the journal): nothing to redraw there.
func progressFor(stderr io.Writer, name string) telescope.Progress {
	f, ok := stderr.(*os.File)
	if !ok || !isTerminal(f) {
		return nil
	}
	p := &progress{w: f, name: name, start: time.Now()}
	return p.update
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

type progress struct {
	w           io.Writer
	name        string
	start, last time.Time
	shown       bool
}

// update redraws the line at most every progressEvery, and erases it at the end
// so that the report starts on a clean line.
func (p *progress) update(read, size int64, packets uint64, done bool) {
	if size < progressMin {
		return
	}
	if done {
		if p.shown {
			fmt.Fprint(p.w, "\r\033[K")
			p.shown = false
		}
		return
	}
	now := time.Now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.shown = now, true
	fmt.Fprint(p.w, "\r\033[K"+progressText(p.name, read, size, packets, now.Sub(p.start)))
}

// progressText is the line itself: "big.pcap.gz: 512 MB of 2.1 GB (24%),
// 1.2 M packets/s, about 1 min 20 s left".
func progressText(name string, read, size int64, packets uint64, elapsed time.Duration) string {
	s := fmt.Sprintf("%s: %s of %s (%d%%)", name, fmtBytes(read), fmtBytes(size), read*100/max(size, 1))
	secs := elapsed.Seconds()
	if secs <= 0 || read <= 0 {
		return s
	}
	s += fmt.Sprintf(", %s packets/s", fmtCount(float64(packets)/secs))
	left := time.Duration(float64(size-read) / (float64(read) / secs) * float64(time.Second))
	return s + ", about " + fmtLeft(left) + " left"
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	default:
		return fmt.Sprintf("%d KB", n>>10)
	}
}

func fmtCount(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.1f M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.0f k", x/1e3)
	default:
		return fmt.Sprintf("%.0f", x)
	}
}

func fmtLeft(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
}
