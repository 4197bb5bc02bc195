package cli

import (
	"fmt"
	"os"
)

// openSecret says what is wrong when file, which holds a secret (the admin
// password hash), can be read by every user: CGI scripts and app workers run as
// other users could read the hash and crack it offline. "" when it is closed.
func openSecret(file, what string) string {
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return ""
	}
	return fmt.Sprintf("%s holds %s and every user may read it (mode %o): the apps' processes could copy it; fix: chmod o-r %s",
		file, what, fi.Mode().Perm(), file)
}
