//go:build linux

package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/peertest"
)

// TestBanNFTablesNoCapability: gantry without CAP_NET_ADMIN (run as an
// unprivileged user) says once that the bans stay out of nftables and serves,
// enforcing them itself.
func TestBanNFTablesNoCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		peertest.Missing(t, "root", "running gantry as another user needs root")
	}
	name := peertest.GroupMember()
	if name == "" {
		peertest.Missing(t, "an unprivileged user", "scripts/install-peers.sh makes gantry-peer")
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "gantry-nocap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "gantry")
	data, err := os.ReadFile(gantryBin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644)
	cfg := filepath.Join(dir, "gantry.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
access_log = "off"

[admin]
listen = "off"

[telescope.ban]
enabled = true
nftables = true
file = "off"

[[site]]
root = %q
`, dir)), 0o644)

	p := startGantryAs(t, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil, bin, "serve", "-c", cfg)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + p.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello\n" {
		t.Fatalf("without nftables: %d %q", resp.StatusCode, body)
	}
	if n := strings.Count(p.log(), "bans not put in nftables (it needs CAP_NET_ADMIN"); n != 1 {
		t.Fatalf("the missing capability said %d times, want once:\n%s", n, p.log())
	}
}
