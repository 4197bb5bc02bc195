package export

import (
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// TestParseTargetUnescapedPasswordHidden: a password with a "/", "?" or "#"
// that was not percent-encoded ends the URL's authority early, so the rest of
// the password lands in the port or the path; the error must not show it.
func TestParseTargetUnescapedPasswordHidden(t *testing.T) {
	for _, tc := range []struct{ name, url, secret string }{
		{"slash after digits: the path", "http://u:1234/topsecret@ch:8123/?database=t", "topsecret"},
		{"slash: the port", "http://u:topsecret/x@ch:8123/", "topsecret"},
		{"question mark: the port", "http://u:topsecret?x@ch:8123/", "topsecret"},
		{"hash: the port", "http://u:topsecret#x@ch:8123/", "topsecret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTarget(tc.url, "", "")
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// TestExporterQueueBoundedInBytes: while ClickHouse is away an attacker's
// requests fill the queue; a row may carry a 1 KiB path, user agent and host
// of bytes that JSON writes six times longer (\ufffd), so a queue bounded
// only in rows would hold gigabytes. Bytes held stay bounded too.
func TestExporterQueueBoundedInBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // ClickHouse away: connections refused
	e := Start(Options{Target: target(t, "http://"+addr+"/?database=t", "", ""), Node: "n", MaxBackoff: time.Hour})
	t.Cleanup(e.Close)
	bad := strings.Repeat("\x80", 4096)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const rows = 8000 // ~150 MB of JSON if all were held
	for range rows {
		e.HTTPEvent(HTTPEvent{Time: time.Now(), Source: netip.MustParseAddr("192.0.2.1"), Host: bad, Method: "GET",
			Path: "/" + bad, UserAgent: bad, Rule: "r", Category: "c"})
	}
	peertest.WaitFor(t, 10*time.Second, "a failed send", func() bool { return e.Stats().Failures >= 1 })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := e.Stats()
	if s.Dropped == 0 {
		t.Errorf("stats %+v: every row of %d queued", s, rows)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 80<<20 {
		t.Errorf("the queue holds %d MB", grown>>20)
	}
}
