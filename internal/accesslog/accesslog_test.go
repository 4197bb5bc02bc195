package accesslog

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

// combined is the Combined Log Format as log analysers read it; what follows the
// user agent is theirs to ignore.
var combined = regexp.MustCompile(`^(\S+) - - \[([^]]+)\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"`)

func TestAbortedMarker(t *testing.T) {
	base := Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RemoteAddr: "192.0.2.1:5555", Method: "GET",
		URI: "/x", Proto: "HTTP/1.1", Status: 200, Bytes: 10, UserAgent: "curl/8"}
	tests := []struct {
		name     string
		aborted  string
		wantTail string // after the combined fields
	}{
		{"complete response", "", ""},
		{"backend", "backend", ` "aborted=backend"`},
		{"timeout", "timeout", ` "aborted=timeout"`},
		{"client", "client", ` "aborted=client"`},
		{"a quote cannot forge fields", `x" "y`, ` "aborted=x\" \"y"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Aborted = tc.aborted
			line := string(AppendCombined(nil, &r))
			m := combined.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%q is not in Combined Log Format", line)
			}
			if m[4] != "200" || m[5] != "10" || m[7] != "curl/8" {
				t.Errorf("fields %q", m[1:])
			}
			if tail := line[len(m[0]):]; tail != tc.wantTail {
				t.Errorf("after the combined fields: %q, want %q", tail, tc.wantTail)
			}

			var j map[string]any
			if err := json.Unmarshal(AppendJSON(nil, &r), &j); err != nil {
				t.Fatal(err)
			}
			got, has := j["aborted"]
			if tc.aborted == "" && has {
				t.Errorf("json has aborted=%v for a complete response", got)
			}
			if tc.aborted != "" && got != tc.aborted {
				t.Errorf("json aborted = %v, want %q", got, tc.aborted)
			}
		})
	}
}
