package cgiresp

import (
	"bytes"
	"fmt"

	"gantry/internal/httpfield"
)

// ParseStatus parses a status: three digits, then optionally a space or a tab and a
// reason phrase, which is dropped (the server sends its own). Apache and nginx read
// the code alone and let any separator through; a tab is the one other a server
// could mean as whitespace. Only final statuses a server may send (200-599) pass.
func ParseStatus[T ~string | ~[]byte](v T) (int, error) {
	if len(v) < 3 || len(v) > 3 && v[3] != ' ' && v[3] != '\t' || !httpfield.ValidValue(v) {
		return 0, fmt.Errorf("bogus Status %q", truncate(v))
	}
	code := 0
	for i := range 3 {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bogus Status %q", truncate(v))
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return 0, fmt.Errorf("Status %d is not a final response status", code)
	}
	return code, nil
}

// parseStatusLine parses an nph- script's "HTTP/1.x NNN reason" line.
func parseStatusLine(line []byte) (int, error) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 2 || (rest[0] != '0' && rest[0] != '1') || rest[1] != ' ' {
		return 0, fmt.Errorf("bogus nph status line %q", truncate(line))
	}
	return ParseStatus(rest[2:])
}
