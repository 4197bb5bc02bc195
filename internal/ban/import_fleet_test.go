package ban

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// downPeer answers for a fleet node that is down: a transport that reaches
// only the peers the test serves.
type downPeer struct{ down string }

func (d downPeer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == d.down {
		return nil, errors.New("connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestImportSparesTheFleet: a peer cannot make this node refuse another node
// it imports from (that node would then be shut out of this node's /api/bans,
// and the fleet split), however it names it.
func TestImportSparesTheFleet(t *testing.T) {
	l, c := newList(t, Options{})
	p := &peer{}
	u := p.serve(t)
	other, _ := url.Parse("http://gantry:pw@203.0.113.90:2020")
	until := c.now().Add(time.Hour)
	p.set(bansJSON(t, Entry{Source: "203.0.113.90", Rule: "exploit", Until: until}, Entry{Source: "203.0.113.91", Rule: "exploit", Until: until}))
	stop := l.StartImport(context.Background(), ImportOptions{Sources: []*url.URL{u, other}, Every: 10 * time.Millisecond,
		Transport: downPeer{other.Host}})
	defer stop()
	peertest.WaitFor(t, 10*time.Second, "the peer's other ban imported", func() bool { return l.Banned(netip.MustParseAddr("203.0.113.91")) })
	if l.Banned(netip.MustParseAddr("203.0.113.90")) {
		t.Fatal("a peer got another node of the fleet banned here")
	}
}
