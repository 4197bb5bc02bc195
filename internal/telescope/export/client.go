package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Target is where rows go: a ClickHouse HTTP interface and a database, with the
// credentials kept apart from the URL so that nothing that prints the URL can
// show them.
type Target struct {
	base     *url.URL // scheme and host, no user, no query
	database string
	user     string
	password string
}

// ParseTarget reads "http://[user:password@]host:8123/?database=telescope". The
// user and password of the URL (or its user= and password= parameters) are
// overridden by non-empty user and password. Errors never repeat the URL: it
// may hold a password.
func ParseTarget(raw, user, password string) (*Target, error) {
	// A password with an unescaped "/", "?" or "#" ends the authority early and
	// its rest becomes the port or the path: then no part of the URL is shown.
	hidden := strings.Contains(raw, "@")
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if hidden {
			// url's errors quote the bad port, escape or host: cut the quote
			msg, _, _ := strings.Cut(err.Error(), "\"")
			return nil, fmt.Errorf("not a URL like \"http://user:password@host:8123/?database=telescope\": %s (percent-encode the password's reserved characters, or set export_password)",
				strings.TrimSpace(msg))
		}
		return nil, fmt.Errorf("not a URL like \"http://host:8123/?database=telescope\": %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: want http or https (ClickHouse's HTTP interface, port 8123)", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host: want a URL like \"http://host:8123/?database=telescope\"")
	}
	if u.Path != "" && u.Path != "/" && hidden {
		return nil, errors.New("a path: ClickHouse's HTTP interface is at \"/\" (percent-encode a \"/\" in the password)")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("path %q: ClickHouse's HTTP interface is at \"/\"", u.Path)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// the bad escape may be in password=: cut its quote
		msg, _, _ := strings.Cut(err.Error(), "\"")
		return nil, fmt.Errorf("query: %s", strings.TrimSpace(msg))
	}
	t := &Target{base: &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}, database: q.Get("database")}
	if t.database == "" {
		t.database = "default"
	}
	if !identifier(t.database) {
		return nil, fmt.Errorf("database %q: want letters, digits and _", t.database)
	}
	for k := range q {
		switch k {
		case "database", "user", "password":
		default:
			return nil, fmt.Errorf("parameter %q: only database, user and password are read", k)
		}
	}
	t.user, t.password = q.Get("user"), q.Get("password")
	if u.User != nil {
		t.user = u.User.Username()
		t.password, _ = u.User.Password()
	}
	if user != "" {
		t.user = user
	}
	if password != "" {
		t.password = password
	}
	return t, nil
}

// String is the URL without credentials, for logs.
func (t *Target) String() string { return t.base.String() + "?database=" + t.database }

// identifier: a database name that needs no quoting.
func identifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// exec runs one statement, with body (rows for an INSERT) after it. The database
// is the target's unless noDB, for CREATE DATABASE.
func (t *Target) exec(ctx context.Context, hc *http.Client, query string, body []byte, noDB bool) error {
	u := *t.base
	q := url.Values{"query": {query}}
	if !noDB {
		q.Set("database", t.database)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	if t.user != "" || t.password != "" {
		user := t.user
		if user == "" {
			user = "default"
		}
		req.SetBasicAuth(user, t.password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error prints the request's URL: the query, never the credentials
		// (they travel in the Authorization header); the statement is noise.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("clickhouse %s: %w", t, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("clickhouse %s: %s: %s", t, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// createTables makes the database and the tables when missing.
func (t *Target) createTables(ctx context.Context, hc *http.Client) error {
	if t.database != "default" {
		if err := t.exec(ctx, hc, "CREATE DATABASE IF NOT EXISTS "+t.database, nil, true); err != nil {
			return err
		}
	}
	for _, s := range schema {
		if err := t.exec(ctx, hc, s, nil, false); err != nil {
			return err
		}
	}
	return nil
}

// insert sends rows, each one JSON object and a newline, to table.
func (t *Target) insert(ctx context.Context, hc *http.Client, table string, rows []byte) error {
	return t.exec(ctx, hc, "INSERT INTO "+table+" FORMAT JSONEachRow", rows, false)
}

// newClient is the HTTP client of a target: every request is bounded.
func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}
