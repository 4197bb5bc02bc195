package export

import (
	"context"
	"encoding/json"

	"gantry/internal/telescope"
)

// Report sends a finished analysis's scans and attacks to t, creating the tables
// when missing, and returns the rows sent. It is `gantry telescope analyze
// --export`: synchronous, and an error stops it (rows of batches already sent
// stay in ClickHouse).
func Report(ctx context.Context, t *Target, nodeName string, r *telescope.Report) (int, error) {
	hc := newClient()
	if err := t.createTables(ctx, hc); err != nil {
		return 0, err
	}
	n := node(nodeName)
	sent := 0
	send := func(table string, rows []any) error {
		const batch = 10000
		for len(rows) > 0 {
			k := min(len(rows), batch)
			var body []byte
			for _, row := range rows[:k] {
				b, err := json.Marshal(row)
				if err != nil {
					return err
				}
				body = append(append(body, b...), '\n')
			}
			if err := t.insert(ctx, hc, table, body); err != nil {
				return err
			}
			sent += k
			rows = rows[k:]
		}
		return nil
	}
	scans := make([]any, len(r.Scans))
	for i, s := range r.Scans {
		scans[i] = n.scan(s)
	}
	if err := send(tableScans, scans); err != nil {
		return sent, err
	}
	attacks := make([]any, len(r.Attacks))
	for i, a := range r.Attacks {
		attacks[i] = n.attack(a)
	}
	return sent, send(tableAttacks, attacks)
}
