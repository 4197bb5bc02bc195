package ban

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// saveEvery is how often changed bans are written to the file.
const saveEvery = 5 * time.Second

// file is the bans file: every ban, active or remembered, oldest first.
type file struct {
	Version int     `json:"version"`
	Bans    []Entry `json:"bans"`
}

// decodeFile reads a bans file, skipping entries that are not a valid ban
// (a hand-edited or damaged file never stops gantry).
func decodeFile(data []byte) ([]Entry, int, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, 0, err
	}
	if f.Version != 1 {
		return nil, 0, fmt.Errorf("version %d: want 1", f.Version)
	}
	var out []Entry
	skipped := 0
	for _, e := range f.Bans {
		k, err := Unit(e.Source)
		if err != nil || e.Strikes < 1 || e.Until.Before(e.Since) || e.Rule == "" {
			skipped++
			continue
		}
		e.Source = k.String()
		e.Strikes = min(e.Strikes, maxStrikes)
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out, skipped, nil
}

// load reads the file, if there is one. An unreadable file is an error (gantry
// could not save either); a damaged one is set aside and logged.
func (l *List) load() error {
	data, err := os.ReadFile(l.opts.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("[telescope.ban] file: %w (fix its permissions, or set file = \"off\")", err)
	}
	entries, skipped, err := decodeFile(data)
	if err != nil {
		bad := l.opts.File + ".bad"
		l.log.Error("bans file unreadable: starting with no bans; the file is kept as "+bad, "file", l.opts.File, "err", err)
		return os.Rename(l.opts.File, bad)
	}
	if skipped > 0 {
		l.log.Warn("bans file: invalid entries skipped", "file", l.opts.File, "skipped", skipped)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entries {
		k, _ := Unit(e.Source)
		if l.never(k) || now.Sub(e.Until) > l.opts.Remember {
			continue // allowed since, or forgotten
		}
		if old := l.bans[k]; old != nil {
			l.remove(old)
		} else if len(l.bans) >= l.opts.Max {
			l.evictOldest()
		}
		l.insert(&entry{key: k, rule: e.Rule, sample: e.Sample, since: e.Since, until: e.Until, strikes: e.Strikes, origin: truncate(e.Origin, 256)})
	}
	return nil
}

// save writes every ban to the file, replacing it whole (a crash leaves the
// old file or the new one, never half of one).
func (l *List) save() error {
	l.dirty.Store(false)
	f := file{Version: 1, Bans: []Entry{}}
	l.mu.RLock()
	for e := l.order.Front(); e != nil; e = e.Next() {
		f.Bans = append(f.Bans, e.Value.(*entry).export())
	}
	l.mu.RUnlock()
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	dir := filepath.Dir(l.opts.File)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bans file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".bans-*.json")
	if err != nil {
		return fmt.Errorf("bans file: %w", err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), l.opts.File)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		l.dirty.Store(true)
		return fmt.Errorf("bans file: %w", werr)
	}
	return nil
}

// saver prunes what is forgotten and writes changes, every saveEvery.
func (l *List) saver() {
	defer close(l.done)
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.prune()
			if l.opts.File == "" || !l.dirty.Load() {
				continue
			}
			if err := l.save(); err != nil {
				if !failing {
					l.log.Error("bans not saved; they will be lost at restart", "err", err)
				}
				failing = true
			} else {
				failing = false
			}
		}
	}
}
