package wsgi

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// autoReloadInterval is how often the development reloader looks for changed .py
// files (Django's own StatReloader polls once a second too).
const autoReloadInterval = time.Second

// autoReload replaces the workers whenever a .py file under Chdir changes. A change
// that breaks the import is logged and the old workers keep serving.
func (h *Handler) autoReload(ctx context.Context) {
	defer close(h.autoDone)
	last := pySnapshot(h.opts.Chdir)
	t := time.NewTicker(autoReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := pySnapshot(h.opts.Chdir)
		if changed := diffSnapshot(last, now); changed != "" {
			h.log.Info("wsgi: source changed; reloading workers", "file", changed)
			if err := h.Reload(ctx); err != nil && ctx.Err() == nil {
				h.log.Error("wsgi: reload failed; old workers keep serving", "err", err)
			}
		}
		last = now
	}
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// pySnapshot stamps every .py file under dir, skipping virtualenvs, caches and
// hidden directories (they are not the project's code, and can be large).
func pySnapshot(dir string) map[string]fileStamp {
	m := map[string]fileStamp{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			name := d.Name()
			if p != dir && (strings.HasPrefix(name, ".") || name == "__pycache__" || name == "node_modules") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "pyvenv.cfg")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".py") {
			if info, err := d.Info(); err == nil {
				m[p] = fileStamp{info.ModTime(), info.Size()}
			}
		}
		return nil
	})
	return m
}

func diffSnapshot(a, b map[string]fileStamp) string {
	for p, s := range b {
		if old, ok := a[p]; !ok || old != s {
			return p
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			return p
		}
	}
	return ""
}
