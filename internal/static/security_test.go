package static

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These are the regression tests for DESIGN.md §4.1's traversal and disclosure
// rules. Requests go through a real http.Server as raw request lines, because Go's
// client (like browsers) would clean "..", and the server must be safe against
// clients that do not.

func securitySite(t *testing.T) (site, addr string) {
	t.Helper()
	site = newSite(t)
	return site, serve(t, newHandler(t, Options{Root: site}))
}

// checkRefused sends each target and requires the given status and no leak.
func checkRefused(t *testing.T, addr string, status int, targets ...string) {
	t.Helper()
	for _, target := range targets {
		resp, body := rawGet(t, addr, target)
		if resp.StatusCode != status {
			t.Errorf("GET %s: status %d, want %d", target, resp.StatusCode, status)
		}
		assertNoLeak(t, target, body)
	}
}

func TestSecurityDotDot(t *testing.T) {
	_, addr := securitySite(t)
	checkRefused(t, addr, 400,
		"/../../../../../../etc/passwd",
		"/sub/../../../etc/passwd",
		"/sub/../.env",
		"/..",
		"/./hello.txt",
	)
}

func TestSecurityEncodedDotDot(t *testing.T) {
	_, addr := securitySite(t)
	checkRefused(t, addr, 400,
		"/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/%2E%2E/%2E%2E/etc/passwd",
		"/sub/%2e%2e/%2e%2e/etc/passwd",
		"/.%2e/.%2e/etc/passwd",
	)
	// Decoded once only: %252e is a literal "%2e" name, which does not exist.
	checkRefused(t, addr, 404, "/%252e%252e/%252e%252e/etc/passwd")
	// CVE-2021-42013's double encoding is not even a valid escape: net/http
	// answers 400 before the handler runs.
	checkRefused(t, addr, 400, "/%%32%65%%32%65/etc/passwd", "/.%%32%65/.%%32%65/etc/passwd")
}

func TestSecurityEncodedSlash(t *testing.T) {
	_, addr := securitySite(t)
	checkRefused(t, addr, 400,
		"/..%2f..%2f..%2fetc%2fpasswd",
		"/sub%2f..%2f..%2fetc%2fpasswd",
		"/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
	)
	// An encoded slash inside the root is an ordinary separator, as in nginx.
	resp, body := rawGet(t, addr, "/sub%2fpage.html")
	if resp.StatusCode != 200 || !strings.Contains(body, "page") {
		t.Fatalf("GET /sub%%2fpage.html: status %d body %q", resp.StatusCode, body)
	}
}

func TestSecurityNUL(t *testing.T) {
	_, addr := securitySite(t)
	checkRefused(t, addr, 400,
		"/hello.txt%00.png",
		"/%00",
		"/sub/%00/../../etc/passwd",
	)
}

func TestSecurityBackslash(t *testing.T) {
	_, addr := securitySite(t)
	checkRefused(t, addr, 400,
		`/..\..\..\etc\passwd`,
		`/sub\..\..\etc\passwd`,
		"/..%5c..%5c..%5cetc%5cpasswd",
		"/sub%5c..%5c.env",
		"/%2e%2e%5c%2e%2e%5cetc%5cpasswd",
	)
}

func TestSecuritySymlinkToPasswd(t *testing.T) {
	site, addr := securitySite(t)
	if err := os.Symlink("/etc/passwd", filepath.Join(site, "passwd.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../etc/passwd", filepath.Join(site, "sub", "relative.txt")); err != nil {
		t.Fatal(err)
	}
	checkRefused(t, addr, 404, "/passwd.txt", "/sub/relative.txt")
	// A symlink that stays inside the root is followed, as nginx does.
	if err := os.Symlink("hello.txt", filepath.Join(site, "alias.txt")); err != nil {
		t.Fatal(err)
	}
	if resp, body := rawGet(t, addr, "/alias.txt"); resp.StatusCode != 200 || body != "hello, world\n" {
		t.Fatalf("in-root symlink: status %d body %q", resp.StatusCode, body)
	}
}

func TestSecuritySymlinkedDirOutOfRoot(t *testing.T) {
	site, addr := securitySite(t)
	if err := os.Symlink("/etc", filepath.Join(site, "etc")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	writeFile(t, filepath.Join(outside, "index.html"), "SECRET_KEY outside the root")
	if err := os.Symlink(outside, filepath.Join(site, "sub", "out")); err != nil {
		t.Fatal(err)
	}
	checkRefused(t, addr, 404, "/etc/passwd", "/etc/hostname", "/sub/out/index.html", "/sub/out/")
	// /etc (a directory outside) is not even redirected to /etc/.
	checkRefused(t, addr, 404, "/etc")
}

func TestSecurityGitConfig(t *testing.T) {
	_, addr := securitySite(t)
	checkRefused(t, addr, 404,
		"/.git/config",
		"/.git/",
		"/.git",
		"/%2egit/config",
		"/sub/.git/config",
	)
	checkRefused(t, addr, 400, "/.well-known/../.git/config")
}

func TestSecurityDotEnv(t *testing.T) {
	site, addr := securitySite(t)
	writeFile(t, filepath.Join(site, ".htpasswd"), "SECRET_KEY admin:$apr1$")
	writeFile(t, filepath.Join(site, "sub", ".env.local"), "SECRET_KEY=x")
	checkRefused(t, addr, 404, "/.env", "/%2eenv", "/.htpasswd", "/sub/.env.local")
	// .well-known stays reachable, for ACME challenges and security.txt.
	if resp, _ := rawGet(t, addr, "/.well-known/security.txt"); resp.StatusCode != 200 {
		t.Fatalf("/.well-known/security.txt: status %d", resp.StatusCode)
	}
}

func TestSecurityOverlappingRanges(t *testing.T) {
	site, addr := securitySite(t)
	content := strings.Repeat("0123456789", 1000) // 10 KB
	writeFile(t, filepath.Join(site, "r.txt"), content)
	writeFile(t, filepath.Join(site, "big.txt"), strings.Repeat("z", 1<<20)) // sent from disk
	many := func(spec string, n int) string {
		return "Range: bytes=" + strings.TrimSuffix(strings.Repeat(spec+",", n), ",")
	}
	tests := []struct {
		name, target, rng string
		size              int
	}{
		{"1000 whole-file parts", "/r.txt", many("0-", 1000), len(content)},
		{"1000 overlapping parts", "/r.txt", many("0-9999", 1000), len(content)},
		{"1000 suffix parts", "/r.txt", many("-10000", 1000), len(content)},
		{"1000 parts from disk", "/big.txt", many("0-", 1000), 1 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawGet(t, addr, tc.target, tc.rng)
			// Refused as a Range (too many parts): the plain file, never 1000 copies.
			if resp.StatusCode != 200 || len(body) != tc.size {
				t.Fatalf("status %d, %d bytes; want 200 with the %d-byte file", resp.StatusCode, len(body), tc.size)
			}
		})
	}
	t.Run("50 overlapping parts coalesce", func(t *testing.T) {
		resp, body := rawGet(t, addr, "/r.txt", many("0-9999", 50))
		if resp.StatusCode != 206 || body != content || resp.Header.Get("Content-Range") != "bytes 0-9999/10000" {
			t.Fatalf("status %d, %d bytes, Content-Range %q", resp.StatusCode, len(body), resp.Header.Get("Content-Range"))
		}
	})
}
