package supervise

import (
	"errors"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
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
