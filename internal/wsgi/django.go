package wsgi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

var settingsModule = regexp.MustCompile(`DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([A-Za-z_][\w.]*)['"]`)

// DetectDjango recognises Django's project layout in dir: manage.py next to a package
// with wsgi.py. It returns the app ("mysite.wsgi:application"); when several packages
// have a wsgi.py, the one manage.py's DJANGO_SETTINGS_MODULE names wins.
func DetectDjango(dir string) (app string, ok bool) {
	manage, err := os.ReadFile(filepath.Join(dir, "manage.py"))
	if err != nil {
		return "", false
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "wsgi.py"))
	if len(matches) == 0 {
		return "", false
	}
	sort.Strings(matches)
	pkg := filepath.Base(filepath.Dir(matches[0]))
	if m := settingsModule.FindSubmatch(manage); m != nil {
		want := strings.SplitN(string(m[1]), ".", 2)[0]
		for _, p := range matches {
			if filepath.Base(filepath.Dir(p)) == want {
				pkg = want
			}
		}
	}
	return pkg + ".wsgi:application", true
}

// DjangoStaticFiles is where a Django project's static files are, as its own
// settings say.
type DjangoStaticFiles struct {
	// URL is STATIC_URL, made absolute ("/static/"); "" when unset, and may be a
	// full URL ("https://cdn.example/") gantry then has nothing to serve for.
	URL string
	// Root is STATIC_ROOT (collectstatic's output), absolute; "" when unset.
	Root string
	// Finders are the directories django.contrib.staticfiles's finders search, in
	// their order, as runserver serves them; empty without staticfiles.
	Finders []FinderDir
}

// FinderDir is one directory a static file finder searches.
type FinderDir struct {
	// Prefix is the path under URL its files appear at ("" for most; a
	// STATICFILES_DIRS entry ("prefix", dir) sets it).
	Prefix string
	Dir    string
}

// djangoStaticCode prints the static settings and the finders' directories; a
// finder without storages (a custom one) has no directory gantry could serve.
const djangoStaticCode = `import json
from django.conf import settings
from django.apps import apps
dirs = []
if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles import finders
    for f in finders.get_finders():
        for s in getattr(f, "storages", {}).values():
            loc = getattr(s, "location", None)
            if loc:
                dirs.append([getattr(s, "prefix", None) or "", str(loc)])
print("GANTRY-STATIC " + json.dumps([settings.STATIC_URL or "", str(settings.STATIC_ROOT or ""), dirs]))
`

// DjangoStatic asks the Django project in dir (through its manage.py, so with its
// own settings) where its static files are: one run of python, at start.
func DjangoStatic(ctx context.Context, python, dir string) (DjangoStaticFiles, error) {
	var out DjangoStaticFiles
	if python == "" {
		python = "python3"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "manage.py", "shell", "-c", djangoStaticCode)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return out, fmt.Errorf("wsgi: django static settings in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	for line := range strings.SplitSeq(stdout.String(), "\n") {
		rest, ok := strings.CutPrefix(line, "GANTRY-STATIC ")
		if !ok {
			continue
		}
		var v [3]json.RawMessage
		var dirs [][2]string
		err := json.Unmarshal([]byte(rest), &v)
		if err == nil {
			err = errors.Join(json.Unmarshal(v[0], &out.URL), json.Unmarshal(v[1], &out.Root), json.Unmarshal(v[2], &dirs))
		}
		if err != nil {
			return DjangoStaticFiles{}, fmt.Errorf("wsgi: django static settings: %w", err)
		}
		if out.URL != "" && !strings.HasPrefix(out.URL, "/") && !strings.Contains(out.URL, "://") {
			out.URL = "/" + out.URL // Django prefixes SCRIPT_NAME to a relative STATIC_URL
		}
		if out.Root != "" && !filepath.IsAbs(out.Root) {
			out.Root = filepath.Join(dir, out.Root)
		}
		for _, d := range dirs {
			if !filepath.IsAbs(d[1]) {
				d[1] = filepath.Join(dir, d[1])
			}
			out.Finders = append(out.Finders, FinderDir{Prefix: d[0], Dir: d[1]})
		}
		return out, nil
	}
	return out, fmt.Errorf("wsgi: django static settings in %s: no answer from manage.py shell", dir)
}
