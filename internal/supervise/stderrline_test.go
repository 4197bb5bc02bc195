package supervise

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestShortLine: the crash's stderr line goes into the dashboard's banner as
// text; what the application wrote to colour a terminal or redraw a line must
// not show up there as stray escape codes, and the line stays short and UTF-8.
func TestShortLine(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "  ZeroDivisionError: division by zero \r", "ZeroDivisionError: division by zero"},
		{"coloured (colorlog, rich)", "\x1b[31;1mZeroDivisionError\x1b[0m: division by zero", "ZeroDivisionError: division by zero"},
		{"terminal title (OSC)", "\x1b]0;pwned\x07Error: x", "Error: x"},
		{"carriage-return redraw", "progress 10%\rprogress 100%\rKeyError: 'a'", "progress 10% progress 100% KeyError: 'a'"},
		{"other control bytes", "a\x00b\x08c\x7fd", "a b c d"},
		{"invalid UTF-8", "bad \xff\xfe byte", "bad  byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shortLine(tc.in); got != tc.want {
				t.Errorf("shortLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	got := shortLine(long)
	if len(got) > 512+len("…") || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("a long line: %d bytes, valid %v, %q...", len(got), utf8.ValidString(got), got[:20])
	}
}
