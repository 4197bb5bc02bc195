package ban

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Sharing bans between nodes: each polls its peers' GET /api/bans and applies
// their own bans locally, marked with the peer they came from. A peer is
// trusted to say whom it banned, not to decide what this node never bans: what
// the allow list, loopback, private ranges, a trusted proxy, this node's own
// addresses or an import peer's cover is refused, as is anything that is not
// one client unit, a list past maxImport and a body past maxImportBody. Bans a peer itself imported are never taken (nor, by the
// same rule, are this node's imports taken by its peers), so two nodes that
// import from each other do not pass a ban back and forth forever.

const (
	// maxImport is the most bans taken from one peer per poll, and the most
	// Shared lists.
	maxImport = 1000
	// maxImportBody bounds a peer's answer.
	maxImportBody = 4 << 20
	// maxRule bounds a rule name from a peer.
	maxRule = 32
	// maxSpare bounds the addresses imports never ban (a peer's name may
	// resolve to a new address now and then).
	maxSpare = 1024
)

// ImportOptions configure StartImport.
type ImportOptions struct {
	// Sources are the peers' admin URLs ("https://node2:2020"); credentials in
	// the URL ("https://gantry:PASSWORD@node2:2020") are sent as HTTP Basic and
	// never logged.
	Sources []*url.URL
	// Every is the polling interval (default 30s); Timeout bounds one poll
	// (default 10s).
	Every   time.Duration
	Timeout time.Duration
	// Transport, when set, carries the requests (tests; a private CA).
	Transport http.RoundTripper
}

// StartImport polls every source until ctx ends or the returned stop is called,
// which waits for the poller to return.
func (l *List) StartImport(ctx context.Context, opts ImportOptions) (stop func()) {
	if opts.Every <= 0 {
		opts.Every = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	client := &http.Client{Transport: opts.Transport, Timeout: opts.Timeout,
		// a redirect would carry the credentials to another host
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// a peer may not shut another node of the fleet out of this node (nor
	// this node itself: never); a peer named by its address is known now
	for _, src := range opts.Sources {
		if a, err := netip.ParseAddr(src.Hostname()); err == nil {
			l.spareAdd(a)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		failing := map[string]bool{}
		t := time.NewTicker(opts.Every)
		defer t.Stop()
		for {
			for _, src := range opts.Sources {
				n, err := l.importFrom(ctx, client, src)
				name := src.Redacted()
				switch {
				case ctx.Err() != nil:
					return
				case err != nil && !failing[name]:
					l.log.Warn("bans not imported", "from", name, "err", err)
					failing[name] = true
				case err == nil && (failing[name] || n > 0):
					l.log.Info("bans imported", "from", name, "new", n)
					failing[name] = false
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// importFrom polls one peer and applies its bans; it returns how many were new.
func (l *List) importFrom(ctx context.Context, client *http.Client, src *url.URL) (int, error) {
	u := *src
	u.User = nil
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/bans"
	// this node's own bans only, as many as maxImport (the dashboard's list
	// stops at its newest 500, imported ones included)
	u.RawQuery, u.Fragment = "own=1", ""
	// a peer named by a host name is spared at the address it answered from
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if ap, err := netip.ParseAddrPort(info.Conn.RemoteAddr().String()); err == nil {
			l.spareAdd(ap.Addr())
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	if src.User != nil {
		pw, _ := src.User.Password()
		req.SetBasicAuth(src.User.Username(), pw)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d (with [admin] password_hash, put the password in the URL: https://gantry:PASSWORD@host:port)", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxImportBody+1))
	if err != nil {
		return 0, err
	}
	bans, more, err := parseImport(body)
	if err != nil {
		return 0, err
	}
	n := l.apply(src.Host, bans, !more)
	l.polls.Add(1)
	return n, nil
}

// parseImport reads a peer's answer to GET /api/bans?own=1: its bans, and
// whether it left older ones out.
func parseImport(body []byte) ([]Entry, bool, error) {
	if len(body) > maxImportBody {
		return nil, false, fmt.Errorf("answer refused: over %d bytes", maxImportBody)
	}
	var got struct {
		Bans []Entry `json:"bans"`
		More bool    `json:"more"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return nil, false, fmt.Errorf("answer refused: not the JSON of /api/bans: %w", err)
	}
	if len(got.Bans) > maxImport {
		return nil, false, fmt.Errorf("answer refused: %d bans, more than %d", len(got.Bans), maxImport)
	}
	return got.Bans, got.More, nil
}

// apply makes origin's active bans this node's, refusing and logging what it
// must never ban, and, when in is complete (the peer left none out), lifts
// origin's bans it no longer lists. It returns how many bans were new.
func (l *List) apply(origin string, in []Entry, complete bool) int {
	now := l.now()
	longest := l.opts.Durations[len(l.opts.Durations)-1]
	listed := map[netip.Prefix]bool{}
	var fresh []netip.Prefix
	refused := 0
	refuse := func(e Entry, why string) {
		if refused++; refused <= 5 {
			l.log.Warn("imported ban refused", "from", origin, "source", truncate(e.Source, 64), "why", why)
		}
	}
	for _, e := range in {
		if e.Origin != "" {
			continue // the peer's own import: never passed on
		}
		k, err := Unit(e.Source)
		switch {
		case err != nil:
			refuse(e, err.Error())
			continue
		case l.never(k):
			refuse(e, ErrNever.Error())
			continue
		case l.spared(k):
			refuse(e, "this node, or a node it imports bans from")
			continue
		case !validRule(e.Rule):
			refuse(e, "rule: want a name of letters, digits and '-'")
			continue
		case !now.Before(e.Until):
			continue // expired there
		}
		until := e.Until
		if until.Sub(now) > longest {
			until = now.Add(longest) // no peer bans for longer than this node would
		}
		listed[k] = true
		l.mu.Lock()
		cur := l.bans[k]
		switch {
		case cur != nil && now.Before(cur.until) && cur.origin != origin:
			// banned here already, by this node or another peer: that ban stands
		case cur != nil && now.Before(cur.until):
			// the peer shortened it, or renewed it within the cap; a capped
			// ban is not pushed on by every poll
			if until.Before(cur.until) || until.Equal(e.Until) && until.After(cur.until) {
				cur.until = until
				l.kernelAdd(k, until)
			}
		default:
			if cur == nil {
				if len(l.bans) >= l.opts.Max {
					l.evictOldest()
				}
				cur = &entry{key: k, strikes: 1}
				l.insert(cur)
			} else {
				l.order.MoveToBack(cur.elem)
			}
			cur.rule, cur.sample, cur.since, cur.until, cur.origin = truncate(e.Rule, maxRule), truncate(e.Sample, 256), now, until, origin
			cur.refused.Store(0)
			cur.told.Store(false)
			l.kernelAdd(k, until)
			fresh = append(fresh, k)
		}
		l.mu.Unlock()
	}
	if refused > 5 {
		l.log.Warn("imported bans refused", "from", origin, "refused", refused)
	}
	// what the peer lifted or let expire is lifted here too; from a list the
	// peer cut short, what it left out runs to its end instead
	lifted := 0
	l.mu.Lock()
	for e := l.order.Front(); complete && e != nil; {
		next := e.Next()
		if en := e.Value.(*entry); en.origin == origin && !listed[en.key] && now.Before(en.until) {
			l.remove(en)
			lifted++
		}
		e = next
	}
	l.mu.Unlock()
	if len(fresh) > 0 || lifted > 0 {
		l.dirty.Store(true)
	}
	for _, k := range fresh {
		l.closeOpen(k)
	}
	return len(fresh)
}

// spareAdd keeps a from every imported ban.
func (l *List) spareAdd(a netip.Addr) {
	a = a.Unmap()
	if !a.IsValid() {
		return
	}
	l.smu.Lock()
	defer l.smu.Unlock()
	if len(l.spare) < maxSpare {
		l.spare[a] = true
	}
}

// spared reports whether the unit k holds an address imports never ban.
func (l *List) spared(k netip.Prefix) bool {
	l.smu.Lock()
	defer l.smu.Unlock()
	for a := range l.spare {
		if k.Contains(a) {
			return true
		}
	}
	return false
}

func validRule(r string) bool {
	if r == "" || len(r) > maxRule {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
