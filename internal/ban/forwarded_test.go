package ban

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestForbiddenLogsOnce: a banned client behind a trusted proxy gets every
// request refused and counted, but its requests are the attacker's to send as
// fast as it likes: the log says so once per ban, not once per request.
func TestForbiddenLogsOnce(t *testing.T) {
	var logs syncLog
	l, _ := newList(t, Options{Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := l.Ban("203.0.113.7", "test", time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if !l.Forbidden("192.0.2.10:4444", []string{"203.0.113.7"}) {
			t.Fatal("the banned client's request was let through")
		}
	}
	if l.Forbidden("198.51.100.1:4444", []string{"203.0.113.7"}) || l.Forbidden("192.0.2.10:4444", []string{"203.0.113.8"}) {
		t.Fatal("an untrusted peer's header, or another client, was refused")
	}
	if _, st := l.Snapshot(0); st.RefusedRequests != 1000 {
		t.Fatalf("refused requests %d, want 1000", st.RefusedRequests)
	}
	if n := strings.Count(logs.String(), "request refused: forwarded for a banned client"); n != 1 {
		t.Fatalf("%d log lines for one banned client's requests, want 1", n)
	}
	// banned again: said again
	if _, err := l.Ban("203.0.113.7", "again", time.Hour); err != nil {
		t.Fatal(err)
	}
	l.Forbidden("192.0.2.10:4444", []string{"203.0.113.7"})
	if n := strings.Count(logs.String(), "request refused: forwarded for a banned client"); n != 2 {
		t.Fatalf("%d log lines after the ban was renewed, want 2", n)
	}
}
