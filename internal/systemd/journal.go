package systemd

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
)

// JournalStream reports whether f is connected to the journal: $JOURNAL_STREAM
// names f's device and inode (systemd.exec(5)), so that output redirected
// elsewhere by the user keeps its own format.
func JournalStream(f *os.File) bool {
	v := os.Getenv("JOURNAL_STREAM")
	if v == "" || f == nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return v == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// NewJournalHandler is a text handler for the journal: no timestamp (the journal
// keeps its own) and the level as a "<N>" syslog priority prefix (sd-daemon(3)),
// which journalctl -p filters and colours on.
func NewJournalHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewTextHandler(priorityWriter{w}, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
}

// priorityWriter turns the leading "level=X " of each record (a TextHandler with no
// time writes one record per Write, starting with its level) into a "<N>" prefix.
type priorityWriter struct{ w io.Writer }

func (p priorityWriter) Write(b []byte) (int, error) {
	rest, ok := bytes.CutPrefix(b, []byte("level="))
	if !ok {
		return p.w.Write(b)
	}
	tok, after, _ := bytes.Cut(rest, []byte(" "))
	var l slog.Level
	if err := l.UnmarshalText(tok); err != nil {
		return p.w.Write(b)
	}
	out := make([]byte, 0, len(after)+3)
	out = append(out, '<', priority(l), '>')
	out = append(out, after...)
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// priority maps a level to a syslog priority: err, warning, info, debug.
func priority(l slog.Level) byte {
	switch {
	case l >= slog.LevelError:
		return '3'
	case l >= slog.LevelWarn:
		return '4'
	case l >= slog.LevelInfo:
		return '6'
	}
	return '7'
}
