package wsgi

import (
	"bytes"
	"context"
	"encoding/json"
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

// DjangoStatic asks the Django project in dir (through its manage.py, so with its own
// settings) for STATIC_URL and STATIC_ROOT. root is "" when STATIC_ROOT is unset.
func DjangoStatic(ctx context.Context, python, dir string) (url, root string, err error) {
	if python == "" {
		python = "python3"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	const code = `import json; from django.conf import settings; ` +
		`print("GANTRY-STATIC " + json.dumps([settings.STATIC_URL or "", str(settings.STATIC_ROOT or "")]))`
	cmd := exec.CommandContext(ctx, python, "manage.py", "shell", "-c", code)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("wsgi: django static settings in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	for line := range strings.SplitSeq(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "GANTRY-STATIC "); ok {
			var v [2]string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return "", "", fmt.Errorf("wsgi: django static settings: %w", err)
			}
			url, root = v[0], v[1]
			if url != "" && !strings.HasPrefix(url, "/") && !strings.Contains(url, "://") {
				url = "/" + url // Django prefixes SCRIPT_NAME to a relative STATIC_URL
			}
			if root != "" && !filepath.IsAbs(root) {
				root = filepath.Join(dir, root)
			}
			return url, root, nil
		}
	}
	return "", "", fmt.Errorf("wsgi: django static settings in %s: no answer from manage.py shell", dir)
}
