package fastcgi

import (
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// fpmSocketGlob is where Debian's and Ubuntu's php-fpm packages put their socket.
var fpmSocketGlob = "/run/php/php*-fpm.sock"

// DetectPHP finds PHP for `gantry serve DIR --php auto`: the socket of a local
// php-fpm that accepts connections (the newest version first), else php-cgi, which
// gantry then spawns on private sockets.
func DetectPHP() (address string, command []string, err error) {
	socks, _ := filepath.Glob(fpmSocketGlob)
	sort.Sort(sort.Reverse(sort.StringSlice(socks)))
	for _, s := range socks {
		if c, err := net.DialTimeout("unix", s, time.Second); err == nil {
			c.Close()
			return "unix:" + s, nil, nil
		}
	}
	if p, err := lookPHPCGI(); err == nil {
		return "", []string{p}, nil
	}
	return "", nil, errors.New("fastcgi: no PHP found: no php-fpm socket in /run/php and no php-cgi on PATH " +
		"(install php-fpm or php-cgi, or pass --php unix:/path/to/php-fpm.sock)")
}

func lookPHPCGI() (string, error) {
	for _, name := range []string{"php-cgi", "php-cgi8.4", "php-cgi8.3", "php-cgi8.2", "php-cgi8.1"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
