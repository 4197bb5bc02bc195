package todo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/wsgi"
)

// demo mounts app.py at /todo/ in daemon mode, as the demo config does, with its
// database in a temp dir; env adds to the app's environment.
func demo(t *testing.T, env map[string]string) (base, db string, handler http.Handler) {
	t.Helper()
	python := peertest.Python(t)
	dir, _ := filepath.Abs(".")
	db = filepath.Join(t.TempDir(), "todo.sqlite3")
	e := map[string]string{"TODO_DB": db}
	for k, v := range env {
		e[k] = v
	}
	h, err := wsgi.New(context.Background(), wsgi.Options{App: "app:application", Python: python, Chdir: dir,
		Route: "/todo/", Processes: 2, Threads: 2, Env: e}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	return srv.URL, db, h
}

// sqlite runs a query on the app's database with Python's sqlite3.
func sqlite(t *testing.T, db, query string) string {
	t.Helper()
	out, err := exec.Command(peertest.Python(t), "-c",
		"import sqlite3,sys; print('\\n'.join(str(r[0]) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))",
		db, query).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", query, err, out)
	}
	return strings.TrimSpace(string(out))
}

// browser is a client with its own cookies that shows redirects.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	tokenRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]{32})"`)
	itemRE  = regexp.MustCompile(`action="/todo/(toggle|delete)/(\d+)"`)
	titleRE = regexp.MustCompile(`<span class="title">([^<]*)</span>`)
)

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// token reads the CSRF token from a form page.
func token(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	_, page := get(t, c, u)
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on %s:\n%.600s", u, page)
	}
	return m[1]
}

// signUp makes an account and leaves c signed in to it; it returns the token of
// the signed-in forms (the list's).
func signUp(t *testing.T, base string, c *http.Client, email string) string {
	t.Helper()
	tok := token(t, c, base+"/todo/signup")
	resp, body := post(t, c, base+"/todo/signup", url.Values{"csrf": {tok}, "email": {email}, "password": {"correct horse"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/todo/" {
		t.Fatalf("sign up %s: %d %q\n%.300s", email, resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return token(t, c, base+"/todo/")
}

func cookieHeader(resp *http.Response, name string) string {
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}

func TestAccounts(t *testing.T) {
	base, db, handler := demo(t, nil)
	c := browser()

	t.Run("the list asks to sign in", func(t *testing.T) {
		resp, _ := post(t, browser(), base+"/todo/add", url.Values{"title": {"x"}})
		if resp.StatusCode != 403 {
			t.Errorf("anonymous add without token: %d, want 403", resp.StatusCode)
		}
		r, err := browser().Get(base + "/todo/")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 303 || r.Header.Get("Location") != "/todo/signin" {
			t.Errorf("anonymous list: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
	})

	t.Run("sign up refuses bad input", func(t *testing.T) {
		tok := token(t, c, base+"/todo/signup")
		for _, tc := range []struct {
			name, email, password string
			status                int
		}{
			{"not an email", "ada", "correct horse", 422},
			{"short password", "ada@example.com", "short", 422},
			{"markup in the email", `<b>@x.io"`, "correct horse", 422},
		} {
			resp, body := post(t, c, base+"/todo/signup", url.Values{"csrf": {tok}, "email": {tc.email}, "password": {tc.password}})
			if resp.StatusCode != tc.status || !strings.Contains(body, `class="alert alert-error"`) {
				t.Errorf("%s: %d, want %d with an error", tc.name, resp.StatusCode, tc.status)
			}
		}
	})

	t.Run("sign up signs in with a safe cookie, hash stored", func(t *testing.T) {
		tok := token(t, c, base+"/todo/signup")
		resp, _ := post(t, c, base+"/todo/signup", url.Values{"csrf": {tok}, "email": {"Ada@Example.com"}, "password": {"correct horse"}})
		sc := cookieHeader(resp, "todo_session")
		if resp.StatusCode != 303 || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || strings.Contains(sc, "Secure") {
			t.Fatalf("sign up: %d, cookie %q", resp.StatusCode, sc)
		}
		code, page := get(t, c, base+"/todo/")
		if code != 200 || !strings.Contains(page, "Signed in as <strong>ada@example.com</strong>") || !strings.Contains(page, `action="/todo/signout"`) {
			t.Errorf("list after sign up: %d\n%.300s", code, page)
		}
		out := sqlite(t, db, "SELECT password FROM users")
		if !strings.HasPrefix(out, "scrypt$16384$8$1$") || strings.Contains(out, "correct horse") {
			t.Errorf("stored password %q", out)
		}
		resp, _ = post(t, browser(), base+"/todo/signup", url.Values{"csrf": {tok}, "email": {"ada@example.com"}, "password": {"other password"}})
		if resp.StatusCode != 403 {
			t.Errorf("a token from another browser: %d, want 403", resp.StatusCode)
		}
	})

	t.Run("the session cookie is Secure over HTTPS", func(t *testing.T) {
		tls := httptest.NewTLSServer(handler)
		t.Cleanup(tls.Close)
		sc := tls.Client()
		jar, _ := cookiejar.New(nil)
		sc.Jar = jar
		sc.CheckRedirect = c.CheckRedirect
		tok := token(t, sc, tls.URL+"/todo/signin")
		resp, _ := post(t, sc, tls.URL+"/todo/signin", url.Values{"csrf": {tok}, "email": {"ada@example.com"}, "password": {"correct horse"}})
		if sc := cookieHeader(resp, "todo_session"); resp.StatusCode != 303 || !strings.Contains(sc, "; Secure") {
			t.Errorf("sign in over HTTPS: %d, cookie %q", resp.StatusCode, sc)
		}
	})

	t.Run("each account sees its own list", func(t *testing.T) {
		tokA := token(t, c, base+"/todo/")
		post(t, c, base+"/todo/add", url.Values{"csrf": {tokA}, "title": {"ada's <secret>"}})
		_, page := get(t, c, base+"/todo/")
		id := itemRE.FindStringSubmatch(page)
		if id == nil || !strings.Contains(page, "ada&#x27;s &lt;secret&gt;") {
			t.Fatalf("ada's item missing:\n%s", titleRE.FindAllString(page, -1))
		}
		bob := browser()
		tokB := signUp(t, base, bob, "bob@example.com")
		_, bobPage := get(t, bob, base+"/todo/")
		if strings.Contains(bobPage, "secret") || !strings.Contains(bobPage, "0 items, 0 open.") {
			t.Errorf("bob sees ada's list:\n%s", titleRE.FindAllString(bobPage, -1))
		}
		tokB = token(t, bob, base+"/todo/")
		for _, a := range []string{"toggle", "delete"} {
			if resp, _ := post(t, bob, base+"/todo/"+a+"/"+id[2], url.Values{"csrf": {tokB}}); resp.StatusCode != 404 {
				t.Errorf("bob %s ada's item: %d, want 404", a, resp.StatusCode)
			}
		}
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, "1 item, 1 open.") {
			t.Error("ada's item changed by bob")
		}
	})

	t.Run("sign out ends the session", func(t *testing.T) {
		tok := token(t, c, base+"/todo/")
		resp, _ := post(t, c, base+"/todo/signout", url.Values{"csrf": {tok}})
		if resp.StatusCode != 303 || !strings.Contains(cookieHeader(resp, "todo_session"), "Max-Age=0") {
			t.Fatalf("sign out: %d %q", resp.StatusCode, cookieHeader(resp, "todo_session"))
		}
		if r, _ := c.Get(base + "/todo/"); r.StatusCode != 303 {
			t.Errorf("list after sign out: %d, want 303 to sign in", r.StatusCode)
		}
	})

	t.Run("sign in with the right password", func(t *testing.T) {
		tok := token(t, c, base+"/todo/signin")
		resp, _ := post(t, c, base+"/todo/signin", url.Values{"csrf": {tok}, "email": {"ada@example.com"}, "password": {"correct horse"}, "next": {"//evil.example/"}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/todo/" {
			t.Fatalf("sign in: %d %q (an off-site next must not be followed)", resp.StatusCode, resp.Header.Get("Location"))
		}
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, "ada&#x27;s &lt;secret&gt;") {
			t.Error("ada's list not back after signing in")
		}
	})
}

func TestSignInLock(t *testing.T) {
	base, _, _ := demo(t, map[string]string{"TODO_LOCK_SECONDS": "2"})
	signUp(t, base, browser(), "ada@example.com")
	signUp(t, base, browser(), "bob@example.com")
	c := browser()
	tok := token(t, c, base+"/todo/signin")
	try := func(email, password string) *http.Response {
		resp, _ := post(t, c, base+"/todo/signin", url.Values{"csrf": {tok}, "email": {email}, "password": {password}})
		return resp
	}
	for i := 1; i <= 4; i++ {
		if resp := try("ada@example.com", "wrong"); resp.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d, want 401", i, resp.StatusCode)
		}
	}
	if resp := try("ada@example.com", "wrong"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("fifth wrong password: %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := try("ada@example.com", "correct horse"); resp.StatusCode != 429 {
		t.Errorf("right password while locked: %d, want 429", resp.StatusCode)
	}
	if resp := try("bob@example.com", "correct horse"); resp.StatusCode != 303 {
		t.Errorf("another account from the same address: %d, want 303", resp.StatusCode)
	}
	peertest.WaitFor(t, 10*time.Second, "the lock to end", func() bool {
		return try("ada@example.com", "correct horse").StatusCode == 303
	})
	// Parallel guesses cannot outrun the count: of ten at once, five are checked.
	signUp(t, base, browser(), "carol@example.com")
	var wg sync.WaitGroup
	codes := make(chan int, 10)
	for range 10 {
		wg.Go(func() {
			resp, err := c.PostForm(base+"/todo/signin", url.Values{"csrf": {tok}, "email": {"carol@example.com"}, "password": {"wrong"}})
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	checked := 0
	for code := range codes {
		if code == 401 {
			checked++
		}
	}
	if checked > 4 {
		t.Errorf("%d of 10 parallel wrong passwords were checked, want at most 4 (the fifth locks)", checked)
	}

	// The count starts again after a success.
	for i := 1; i <= 4; i++ {
		if resp := try("ada@example.com", "wrong"); resp.StatusCode != 401 {
			t.Fatalf("after the lock, wrong password %d: %d, want 401", i, resp.StatusCode)
		}
	}
}

// The JSON face the static pages use: who is signed in, and a modal sign-in.
func TestJSON(t *testing.T) {
	base, _, _ := demo(t, nil)
	signUp(t, base, browser(), "ada@example.com")
	c := browser()
	me := func() (user any, csrf string) {
		_, body := get(t, c, base+"/todo/api/me")
		var v struct {
			User any
			CSRF string
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("api/me: %v: %s", err, body)
		}
		return v.User, v.CSRF
	}
	user, csrf := me()
	if user != nil || len(csrf) != 32 {
		t.Fatalf("anonymous api/me: %v %q", user, csrf)
	}
	signin := func(form url.Values) (int, string) {
		req, _ := http.NewRequest("POST", base+"/todo/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := signin(url.Values{"email": {"ada@example.com"}, "password": {"correct horse"}}); code != 403 || !strings.Contains(body, `"error"`) {
		t.Errorf("JSON sign-in without token: %d %s", code, body)
	}
	if code, body := signin(url.Values{"csrf": {csrf}, "email": {"ada@example.com"}, "password": {"nope"}}); code != 401 || !strings.Contains(body, "Wrong email or password") {
		t.Errorf("JSON wrong password: %d %s", code, body)
	}
	if code, body := signin(url.Values{"csrf": {csrf}, "email": {"ada@example.com"}, "password": {"correct horse"}}); code != 200 || !strings.Contains(body, `"user": "ada@example.com"`) {
		t.Errorf("JSON sign-in: %d %s", code, body)
	}
	if user, _ := me(); user != "ada@example.com" {
		t.Errorf("api/me after sign-in: %v", user)
	}
}

func TestTodo(t *testing.T) {
	base, _, _ := demo(t, nil)
	c := browser()
	token := signUp(t, base, c, "ada@example.com")

	t.Run("add escapes and redirects", func(t *testing.T) {
		resp, _ := post(t, c, base+"/todo/add", url.Values{"title": {"  buy <milk> & eggs  "}, "csrf": {token}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/todo/" {
			t.Fatalf("add: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, page := get(t, c, base+"/todo/")
		if !strings.Contains(page, "buy &lt;milk&gt; &amp; eggs") || strings.Contains(page, "<milk>") {
			t.Errorf("title not escaped:\n%s", titleRE.FindAllString(page, -1))
		}
		if !regexp.MustCompile(`<time class="muted" datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" data-relative>`).MatchString(page) {
			t.Error("no machine-readable time for the browser to put in words")
		}
		resp, body := post(t, c, base+"/todo/add", url.Values{"title": {"   "}, "csrf": {token}})
		if resp.StatusCode != 422 || !strings.Contains(body, `class="alert alert-error"`) {
			t.Errorf("blank title: %d, want 422 with the error style", resp.StatusCode)
		}
	})

	t.Run("complete, reopen and delete", func(t *testing.T) {
		_, page := get(t, c, base+"/todo/")
		id := itemRE.FindStringSubmatch(page)[2]
		if resp, _ := post(t, c, base+"/todo/toggle/"+id, url.Values{"csrf": {token}}); resp.StatusCode != 303 {
			t.Fatalf("toggle: %d", resp.StatusCode)
		}
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, `<li class="done">`) || !strings.Contains(page, "1 item, 0 open.") {
			t.Errorf("item not done:\n%.300s", page)
		}
		post(t, c, base+"/todo/toggle/"+id, url.Values{"csrf": {token}})
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, "1 item, 1 open.") {
			t.Error("item not reopened")
		}
		if resp, _ := post(t, c, base+"/todo/delete/"+id, url.Values{"csrf": {token}}); resp.StatusCode != 303 {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, "0 items, 0 open.") {
			t.Error("item not deleted")
		}
		if resp, _ := post(t, c, base+"/todo/delete/"+id, url.Values{"csrf": {token}}); resp.StatusCode != 404 {
			t.Errorf("deleting a deleted item: %d, want 404", resp.StatusCode)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		for i := 1; i <= 23; i++ {
			post(t, c, base+"/todo/add", url.Values{"title": {fmt.Sprintf("item %02d", i)}, "csrf": {token}})
		}
		_, p1 := get(t, c, base+"/todo/")
		titles := titleRE.FindAllStringSubmatch(p1, -1)
		if len(titles) != 10 || titles[0][1] != "item 23" || !strings.Contains(p1, "Page 1 of 3") ||
			!strings.Contains(p1, `href="/todo/?page=2" rel="next"`) {
			t.Errorf("page 1: %d titles, first %v", len(titles), titles[0])
		}
		_, p3 := get(t, c, base+"/todo/?page=3")
		titles = titleRE.FindAllStringSubmatch(p3, -1)
		if len(titles) != 3 || titles[2][1] != "item 01" || strings.Contains(p3, `rel="next"`) {
			t.Errorf("page 3: %v", titles)
		}
		if _, p := get(t, c, base+"/todo/?page=99"); !strings.Contains(p, "Page 3 of 3") {
			t.Error("a page past the end does not show the last page")
		}
		_, p2 := get(t, c, base+"/todo/?page=2")
		id := itemRE.FindStringSubmatch(p2)[2]
		if resp, _ := post(t, c, base+"/todo/toggle/"+id, url.Values{"csrf": {token}, "page": {"2"}}); resp.Header.Get("Location") != "/todo/?page=2" {
			t.Errorf("toggle on page 2 redirects to %q", resp.Header.Get("Location"))
		}
	})

	t.Run("wrong methods and paths", func(t *testing.T) {
		for _, tc := range []struct {
			path   string
			status int
		}{{"/todo/add", 405}, {"/todo/signout", 405}, {"/todo/nope", 404}, {"/todo/toggle/1/x", 404}} {
			if code, _ := get(t, c, base+tc.path); code != tc.status {
				t.Errorf("GET %s: %d, want %d", tc.path, code, tc.status)
			}
		}
	})
}

// A "next" the browser was given in a link (?next=) may hold any text; a Location
// field carries ASCII only. Such a next falls back to the list instead of failing
// the sign-in after its session was made (a 500 that drops the new cookie).
func TestSignInNextOutsideASCII(t *testing.T) {
	base, _, _ := demo(t, nil)
	signUp(t, base, browser(), "ada@example.com")
	tests := []struct{ name, next string }{
		{"outside Latin-1", "/todo/€"},
		{"Latin-1 but not ASCII", "/todo/é"},
		{"a DEL", "/todo/\x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := browser()
			tok := token(t, c, base+"/todo/signin")
			resp, body := post(t, c, base+"/todo/signin", url.Values{"csrf": {tok}, "email": {"ada@example.com"},
				"password": {"correct horse"}, "next": {tt.next}})
			if resp.StatusCode != 303 || resp.Header.Get("Location") != "/todo/" || cookieHeader(resp, "todo_session") == "" {
				t.Fatalf("sign in with next %q: %d Location %q session cookie %q, want 303 to /todo/ with a session\n%.300s",
					tt.next, resp.StatusCode, resp.Header.Get("Location"), cookieHeader(resp, "todo_session"), body)
			}
		})
	}
}

// The token a signed-in form needs is bound to the session: a todo_csrf cookie
// planted before the sign-in (by a sibling subdomain, or a plain-HTTP answer
// injected on the way) does not let its planter forge that user's forms, while the
// token the app hands out (page, JSON) keeps working.
func TestCSRFTokenBoundToSession(t *testing.T) {
	base, db, _ := demo(t, nil)
	signUp(t, base, browser(), "ada@example.com")
	planted := strings.Repeat("a", 32)
	c := browser()
	u, _ := url.Parse(base + "/todo/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "todo_csrf", Value: planted, Path: "/todo/"}})
	resp, body := post(t, c, base+"/todo/signin", url.Values{"csrf": {planted}, "email": {"ada@example.com"}, "password": {"correct horse"}})
	if resp.StatusCode != 303 {
		t.Fatalf("sign in: %d\n%.300s", resp.StatusCode, body)
	}
	forged, _ := post(t, c, base+"/todo/add", url.Values{"csrf": {planted}, "title": {"planted by another"}})
	if forged.StatusCode != 403 {
		t.Errorf("add with the planted token after sign-in: %d, want 403", forged.StatusCode)
	}
	given := token(t, c, base+"/todo/")
	if given == planted {
		t.Errorf("the list's forms still carry the planted token")
	}
	if resp, _ := post(t, c, base+"/todo/add", url.Values{"csrf": {given}, "title": {"mine"}}); resp.StatusCode != 303 {
		t.Errorf("add with the page's token: %d, want 303", resp.StatusCode)
	}
	if got := sqlite(t, db, "SELECT group_concat(title) FROM todo"); got != "mine" {
		t.Errorf("items %q, want only mine", got)
	}
	// Sign out with the token /api/me gives; the sign-in form after it works again.
	req, _ := http.NewRequest("GET", base+"/todo/api/me", nil)
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me struct{ User, CSRF string }
	json.NewDecoder(r.Body).Decode(&me)
	r.Body.Close()
	if me.CSRF != given {
		t.Errorf("/api/me token %q, want the page's %q", me.CSRF, given)
	}
	out, _ := post(t, c, base+"/todo/signout", url.Values{"csrf": {me.CSRF}})
	if out.StatusCode != 303 {
		t.Fatalf("sign out: %d, want 303", out.StatusCode)
	}
	tok := token(t, c, base+"/todo/signin")
	if resp, _ := post(t, c, base+"/todo/signin", url.Values{"csrf": {tok}, "email": {"ada@example.com"}, "password": {"correct horse"}}); resp.StatusCode != 303 {
		t.Errorf("sign in again after signing out: %d, want 303", resp.StatusCode)
	}
}
