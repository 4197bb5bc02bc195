// Package export sends the telescope's findings to ClickHouse over its HTTP
// interface (INSERT ... FORMAT JSONEachRow): unsolicited HTTP requests,
// dark-port hits, scans, attacks and bans, each row naming the node that saw it, so
// that one database holds a fleet's telescope.
//
// A serving node's rows wait in a bounded in-memory queue and go in batches (by
// size or every few seconds); a failed batch stays queued and is retried with
// backoff. Nothing a request does waits on ClickHouse: when the queue is full,
// new rows are dropped and counted.
package export

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/telescope"
)

// Options configures an Exporter; zero fields take their defaults.
type Options struct {
	Target *Target
	// Node names the machine in every row.
	Node string
	// Batch is the rows that start a send at once (default 1000).
	Batch int
	// Every is the longest a row waits before its batch is sent (default 5s).
	Every time.Duration
	// Queue bounds the rows held while ClickHouse is slow or away (default 100000).
	Queue int
	// QueueBytes bounds the bytes of those rows (default 64 MiB): a row of
	// attacker-chosen text may encode to tens of kilobytes.
	QueueBytes int
	// MaxBackoff bounds the wait between failed sends (default 1 minute).
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// Stats are an exporter's counters.
type Stats struct {
	Exported uint64 `json:"exported"` // rows ClickHouse accepted
	Dropped  uint64 `json:"dropped"`  // rows dropped because the queue was full
	Queued   int    `json:"queued"`   // rows waiting now
	Failures uint64 `json:"failures"` // failed sends (each retried)
	Target   string `json:"target"`   // the URL without credentials
}

// Exporter is a serving node's exporter. Its methods that take rows never block.
type Exporter struct {
	opts   Options
	node   node
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	queue  map[string][][]byte // table -> JSON rows, oldest first
	queued int
	bytes  int // of the queued rows

	exported, dropped, failures atomic.Uint64
	kick                        chan struct{}
	stop                        context.CancelFunc
	done                        chan struct{}
	closeOnce                   sync.Once
}

// Start runs an exporter until Close.
func Start(opts Options) *Exporter {
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 100000
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 64 << 20
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{opts: opts, node: node(opts.Node), log: log, client: newClient(), queue: map[string][][]byte{},
		kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go e.run(ctx)
	return e
}

// HTTPEvent queues an unsolicited request.
func (e *Exporter) HTTPEvent(ev HTTPEvent) {
	if !e.full() {
		e.add(tableHTTP, e.node.http(ev))
	}
}

// DarkPortHit queues a dark-port hit.
func (e *Exporter) DarkPortHit(h DarkPortHit) {
	if !e.full() {
		e.add(tableDark, e.node.dark(h))
	}
}

// Scan queues a finished scan.
func (e *Exporter) Scan(s telescope.Scan) {
	if !e.full() {
		e.add(tableScans, e.node.scan(s))
	}
}

// Attack queues a finished attack.
func (e *Exporter) Attack(a telescope.Attack) {
	if !e.full() {
		e.add(tableAttacks, e.node.attack(a))
	}
}

// Ban queues a ban this node issued.
func (e *Exporter) Ban(b Ban) {
	if !e.full() {
		e.add(tableBans, e.node.ban(b))
	}
}

// full counts a drop when the queue is full (ClickHouse away), before a row is
// made: then a request costs no encoding.
func (e *Exporter) full() bool {
	e.mu.Lock()
	full := e.queued >= e.opts.Queue || e.bytes >= e.opts.QueueBytes
	e.mu.Unlock()
	if full {
		e.dropped.Add(1)
	}
	return full
}

func (e *Exporter) add(table string, row any) {
	b, err := json.Marshal(row)
	if err != nil {
		// only a non-finite float can fail, and rows are made finite first
		e.dropped.Add(1)
		return
	}
	b = append(b, '\n')
	e.mu.Lock()
	if e.queued >= e.opts.Queue || e.bytes+len(b) > e.opts.QueueBytes {
		e.mu.Unlock()
		e.dropped.Add(1)
		return
	}
	e.queue[table] = append(e.queue[table], b)
	e.queued++
	e.bytes += len(b)
	batch := e.queued >= e.opts.Batch
	e.mu.Unlock()
	if batch {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// Stats returns the counters.
func (e *Exporter) Stats() Stats {
	e.mu.Lock()
	q := e.queued
	e.mu.Unlock()
	return Stats{Exported: e.exported.Load(), Dropped: e.dropped.Load(), Queued: q, Failures: e.failures.Load(),
		Target: e.opts.Target.String()}
}

// Close sends what is queued (for at most a few seconds) and stops.
func (e *Exporter) Close() {
	e.closeOnce.Do(func() {
		e.stop()
		<-e.done
	})
}

func (e *Exporter) run(ctx context.Context) {
	defer close(e.done)
	tick := time.NewTicker(e.opts.Every)
	defer tick.Stop()
	ready := false // the tables exist
	backoff := time.Duration(0)
	var retry <-chan time.Time
	for {
		if retry == nil {
			select {
			case <-ctx.Done():
				e.final(ready)
				return
			case <-tick.C:
			case <-e.kick:
			}
		} else {
			select {
			case <-ctx.Done():
				e.final(ready)
				return
			case <-retry:
			}
		}
		err := e.flush(ctx, &ready)
		if err == nil {
			backoff, retry = 0, nil
			continue
		}
		if ctx.Err() != nil {
			continue
		}
		e.failures.Add(1)
		backoff = min(max(2*backoff, time.Second), e.opts.MaxBackoff)
		e.log.Warn("telescope export failed; rows stay queued", "err", err, "retry_in", backoff, "queued", e.Stats().Queued)
		retry = time.After(backoff)
	}
}

// final gives the rows still queued one last try on shutdown.
func (e *Exporter) final(ready bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.flush(ctx, &ready); err != nil {
		e.log.Warn("telescope export: rows lost at shutdown", "err", err, "rows", e.Stats().Queued)
	}
}

// flush sends every table's queued rows, a batch at a time. A batch leaves the
// queue only once ClickHouse has it.
func (e *Exporter) flush(ctx context.Context, ready *bool) error {
	for _, table := range []string{tableHTTP, tableDark, tableScans, tableAttacks, tableBans} {
		for {
			e.mu.Lock()
			rows := e.queue[table][:min(len(e.queue[table]), e.opts.Batch)]
			e.mu.Unlock()
			if len(rows) == 0 {
				break
			}
			if !*ready {
				if err := e.opts.Target.createTables(ctx, e.client); err != nil {
					return err
				}
				*ready = true
			}
			n := 0
			for _, r := range rows {
				n += len(r)
			}
			body := make([]byte, 0, n)
			for _, r := range rows {
				body = append(body, r...)
			}
			if err := e.opts.Target.insert(ctx, e.client, table, body); err != nil {
				// a server restarted empty, or a table dropped: create them again
				*ready = false
				return err
			}
			e.mu.Lock()
			q := e.queue[table]
			n = copy(q, q[len(rows):])
			clear(q[n:])
			e.queue[table] = q[:n]
			e.queued -= len(rows)
			e.bytes -= len(body)
			e.mu.Unlock()
			e.exported.Add(uint64(len(rows)))
		}
	}
	return nil
}

// finite keeps a float JSON can carry.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
