package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gantry/internal/peertest"
)

// idOf is what id(1) says of name: uid, gid and the group list getgrouplist(3)
// builds, the oracle LookupCredential must agree with.
func idOf(t *testing.T, name string) (uid, gid uint32, groups []uint32) {
	t.Helper()
	num := func(flag string) []uint32 {
		out, err := exec.Command("id", flag, name).Output()
		if err != nil {
			t.Fatalf("id %s %s: %v", flag, name, err)
		}
		var ns []uint32
		for _, f := range strings.Fields(string(out)) {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				t.Fatalf("id %s %s: %q", flag, name, out)
			}
			ns = append(ns, uint32(n))
		}
		return ns
	}
	return num("-u")[0], num("-g")[0], num("-G")
}

func TestLookupCredential(t *testing.T) {
	cases := []struct {
		name    string
		user    string
		wantErr string // "" for a user id(1) knows
	}{
		{"root", "root", ""},
		{"nobody", "nobody", ""},
		{"a member of other groups gets them all", peertest.GroupMember(), ""},
		{"a numeric id is not a name", "65534", `unknown user 65534`},
		{"unknown user", "no-such-user-gantry", `unknown user no-such-user-gantry`},
		{"empty name", "", `unknown user`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr == "" && tc.user == "" {
				peertest.Missing(t, "a user with a supplementary group", "no user in /etc/group is a member of a group other than its own")
			}
			c, err := LookupCredential(tc.user)
			if tc.wantErr != "" {
				var unknown user.UnknownUserError
				if err == nil || !errors.As(err, &unknown) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LookupCredential(%q) = %+v, %v; want an unknown-user error %q", tc.user, c, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			uid, gid, groups := idOf(t, tc.user)
			slices.Sort(groups)
			got := slices.Sorted(slices.Values(c.Groups))
			if c.Uid != uid || c.Gid != gid || !slices.Equal(got, groups) || c.Groups[0] != gid {
				t.Errorf("%s: uid %d gid %d groups %v; id(1) says uid %d gid %d groups %v (primary first)",
					tc.user, c.Uid, c.Gid, c.Groups, uid, gid, groups)
			}
		})
	}
}

// TestRunAs checks the credential a route's user and group keys give: nothing to
// change for gantry's own user, the user's ids otherwise, and, for a gantry that
// runs as an ordinary user without CAP_SETUID, an error naming the fix (run in a
// copy of this test binary started as gantry-peer).
func TestRunAs(t *testing.T) {
	if os.Getenv("GANTRY_RUNAS_CHILD") == "1" {
		_, err := RunAs("gantry-peer2", "")
		if err == nil || !strings.Contains(err.Error(), "CAP_SETUID") {
			fmt.Printf("RunAs as an ordinary user: %v\n", err)
			os.Exit(1)
		}
		if c, err := RunAs("gantry-peer", ""); c != nil || err != nil {
			fmt.Printf("RunAs for gantry's own user: %+v, %v\n", c, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	peertest.Root(t, "starting a process as another user")
	self, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := RunAs(self.Username, ""); c != nil || err != nil {
		t.Errorf("RunAs(own user) = %+v, %v; want nothing to change", c, err)
	}
	peer := peertest.GroupMember()
	if peer == "" {
		peertest.Missing(t, "a user with a supplementary group", "scripts/install-peers.sh creates gantry-peer")
	}
	uid, gid, _ := idOf(t, peer)
	c, err := RunAs(peer, "")
	if err != nil || c.Uid != uid || c.Gid != gid {
		t.Fatalf("RunAs(%s) = %+v, %v; want uid %d gid %d", peer, c, err, uid, gid)
	}
	c, err = RunAs(peer, "nogroup")
	if err != nil {
		t.Fatal(err)
	}
	ng, _ := user.LookupGroup("nogroup")
	if strconv.FormatUint(uint64(c.Gid), 10) != ng.Gid || !slices.Contains(c.Groups, c.Gid) {
		t.Errorf("RunAs(%s, nogroup) = %+v; want primary group nogroup (%s), also among the groups", peer, c, ng.Gid)
	}
	if _, err := RunAs(peer, "no-such-group-gantry"); err == nil {
		t.Error("RunAs with an unknown group: no error")
	}

	// A gantry running as gantry-peer, without capabilities.
	if _, err := user.Lookup("gantry-peer2"); err != nil {
		peertest.Missing(t, "user gantry-peer2", "scripts/install-peers.sh creates it")
	}
	dir, err := os.MkdirTemp("", "gantry-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "supervise.test")
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	pc, err := LookupCredential("gantry-peer")
	if err != nil {
		peertest.Missing(t, "user gantry-peer", "scripts/install-peers.sh creates it")
	}
	cmd := exec.Command(bin, "-test.run=^TestRunAs$")
	cmd.Env = append(os.Environ(), "GANTRY_RUNAS_CHILD=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pc}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as gantry-peer: %v\n%s", err, out)
	}
}
