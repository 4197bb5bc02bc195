package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"gantry/internal/adminsock"
	"gantry/internal/basicauth"
	"gantry/internal/config"
	"gantry/internal/dashboard"
	"gantry/internal/server"
	"gantry/internal/supervise"
)

func check(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	file := fs.String("c", "", "config file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *file == "" && len(pos) == 1 {
		*file = pos[0]
	}
	if *file == "" {
		return fmt.Errorf("gantry check: give the config file: gantry check -c FILE")
	}
	cfg, err := config.Load(*file)
	if err != nil {
		var ce config.Errors
		if errors.As(err, &ce) {
			return fmt.Errorf("%s\ngantry check: %d problem(s) in %s", ce.Error(), len(ce), *file)
		}
		return err
	}
	routes := 0
	for _, s := range cfg.Sites {
		routes += len(s.Routes)
	}
	fmt.Fprintf(stdout, "%s: ok (%d site(s), %d route(s))\n", *file, len(cfg.Sites), routes)
	if root := internalRoot(cfg); root != "" {
		fmt.Fprintf(stdout, "internal CA root: %s (trust it on the devices that use the sites with tls = \"internal\")\n", root)
	}
	return nil
}

// reload asks the running gantry to reload: through the admin socket when there
// is one (the kernel vouches that we are gantry's user or root, so no password),
// else on the TCP admin address, where a gantry with a password answers 401.
func reload(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	admin := fs.String("admin", config.DefaultAdminListen, "address of the running gantry's admin listener, when its admin socket is not there")
	sock := fs.String("socket", adminsock.Path(), "the running gantry's admin socket")
	asJSON := fs.Bool("json", false, "print the answer as JSON, for scripts")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	const timeout = 2 * time.Minute
	target, url := *admin, "http://"+*admin+"/api/reload"
	client := &http.Client{Timeout: timeout}
	useSock, err := adminsock.Usable(*sock, os.Geteuid())
	if err != nil {
		return fmt.Errorf("gantry reload: %w", err)
	}
	if useSock {
		target, url = *sock, "http://localhost/api/reload"
		client = adminsock.Client(*sock, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return fmt.Errorf("gantry reload: %w", err)
	}
	req.Header.Set("X-Gantry-CLI", "1")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("gantry reload: no gantry answers on %s (is it running? is --admin right?): %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var res server.ReloadResult
	jsonErr := json.Unmarshal(body, &res)
	// Only an answer that says ok is a reload; one without the counts (a gantry
	// older than this command) is told as a bare "reloaded", not as 0 sites.
	var counted struct{ Sites *int }
	counts := json.Unmarshal(body, &counted) == nil && counted.Sites != nil
	switch {
	case resp.StatusCode == http.StatusOK && jsonErr == nil && res.OK && *asJSON:
		fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(body))
		return nil
	case resp.StatusCode == http.StatusOK && jsonErr == nil && res.OK && !counts:
		fmt.Fprintln(stdout, "reloaded")
		return nil
	case resp.StatusCode == http.StatusOK && jsonErr == nil && res.OK:
		fmt.Fprintln(stdout, reloadSentence(res))
		return nil
	case resp.StatusCode == http.StatusUnprocessableEntity && jsonErr == nil && res.Error != "":
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(body))
		}
		return fmt.Errorf("gantry reload: not reloaded, the running configuration keeps serving:\n%s", res.Error)
	}
	return fmt.Errorf("gantry reload: %s on %s: %s", resp.Status, target, strings.TrimSpace(string(body)))
}

// reloadSentence says what a reload did: "reloaded: 3 sites, 7 routes; 1 route
// restarted (/app/)".
func reloadSentence(r server.ReloadResult) string {
	s := fmt.Sprintf("reloaded: %s, %s", plural(r.Sites, "site"), plural(r.Routes, "route"))
	if n := len(r.Restarted); n > 0 {
		s += fmt.Sprintf("; %s restarted (%s)", plural(n, "route"), strings.Join(r.Restarted, ", "))
	}
	if len(r.RestartOnly) > 0 {
		s += fmt.Sprintf("\nchanged but applied only when gantry restarts: %s", strings.Join(r.RestartOnly, "; "))
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func hashPassword(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	user := fs.String("htpasswd", "", "print an htpasswd line for this user (bcrypt), for a route's auth file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("gantry hash-password: unexpected %q: the password is read from stdin", pos[0])
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("gantry hash-password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return fmt.Errorf("gantry hash-password: no password on stdin: echo 'a long passphrase' | gantry hash-password")
	}
	var h string
	if *user != "" {
		h, err = basicauth.Line(*user, pw)
	} else {
		h, err = dashboard.HashPassword(pw)
	}
	if err != nil {
		return fmt.Errorf("gantry hash-password: %w", err)
	}
	fmt.Fprintln(stdout, h)
	return nil
}

// dropPrivileges switches to name's uid, gid and groups when gantry runs as root,
// after the listeners are bound. Go applies setuid to every thread of the process.
func dropPrivileges(name string) error {
	if name == "" || os.Getuid() != 0 {
		return nil
	}
	c, err := supervise.LookupCredential(name)
	if err != nil {
		return fmt.Errorf("[server] user %q: %w", name, err)
	}
	groups := make([]int, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("drop privileges to %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(int(c.Gid)); err != nil {
		return fmt.Errorf("drop privileges to %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(int(c.Uid)); err != nil {
		return fmt.Errorf("drop privileges to %s: setuid: %w", name, err)
	}
	return nil
}
