package todo_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/wsgi"
)

// demo mounts app.py at /todo/ in daemon mode, as the demo config does, with its
// database in a temp dir.
func demo(t *testing.T) (base string, c *http.Client) {
	t.Helper()
	python := peertest.Python(t)
	dir, _ := filepath.Abs(".")
	h, err := wsgi.New(context.Background(), wsgi.Options{App: "app:application", Python: python, Chdir: dir,
		Route: "/todo/", Processes: 2, Threads: 2,
		Env: map[string]string{"TODO_DB": filepath.Join(t.TempDir(), "todo.sqlite3")}}, slog.New(slog.DiscardHandler))
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
	jar, _ := cookiejar.New(nil)
	return srv.URL, &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

func TestTodo(t *testing.T) {
	base, c := demo(t)
	code, page := get(t, c, base+"/todo/")
	m := tokenRE.FindStringSubmatch(page)
	if code != 200 || m == nil || !strings.Contains(page, "0 items, 0 open.") {
		t.Fatalf("empty list: %d, token %v\n%.400s", code, m != nil, page)
	}
	token := m[1]
	if !strings.Contains(page, `action="/todo/add"`) {
		t.Error("form does not post under SCRIPT_NAME /todo")
	}

	t.Run("add needs the CSRF token", func(t *testing.T) {
		if code, _ := post(t, c, base+"/todo/add", url.Values{"title": {"sneaky"}}); code != 403 {
			t.Errorf("add without token: %d, want 403", code)
		}
		other, _ := cookiejar.New(nil)
		stranger := &http.Client{Jar: other}
		if code, _ := post(t, stranger, base+"/todo/add", url.Values{"title": {"sneaky"}, "csrf": {token}}); code != 403 {
			t.Errorf("add with someone else's token: %d, want 403", code)
		}
	})

	t.Run("add escapes and redirects", func(t *testing.T) {
		code, loc := post(t, c, base+"/todo/add", url.Values{"title": {"  buy <milk> & eggs  "}, "csrf": {token}})
		if code != 303 || loc != "/todo/" {
			t.Fatalf("add: %d Location %q", code, loc)
		}
		_, page := get(t, c, base+"/todo/")
		if !strings.Contains(page, "buy &lt;milk&gt; &amp; eggs") || strings.Contains(page, "<milk>") {
			t.Errorf("title not escaped:\n%s", titleRE.FindAllString(page, -1))
		}
		if code, _ := post(t, c, base+"/todo/add", url.Values{"title": {"   "}, "csrf": {token}}); code != 422 {
			t.Errorf("blank title: %d, want 422", code)
		}
	})

	t.Run("complete, reopen and delete", func(t *testing.T) {
		_, page := get(t, c, base+"/todo/")
		id := itemRE.FindStringSubmatch(page)[2]
		if code, _ := post(t, c, base+"/todo/toggle/"+id, url.Values{"csrf": {token}}); code != 303 {
			t.Fatalf("toggle: %d", code)
		}
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, `<li class="done">`) || !strings.Contains(page, "1 item, 0 open.") {
			t.Errorf("item not done:\n%.300s", page)
		}
		post(t, c, base+"/todo/toggle/"+id, url.Values{"csrf": {token}})
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, "1 item, 1 open.") {
			t.Error("item not reopened")
		}
		if code, _ := post(t, c, base+"/todo/delete/"+id, url.Values{"csrf": {token}}); code != 303 {
			t.Fatalf("delete: %d", code)
		}
		if _, page := get(t, c, base+"/todo/"); !strings.Contains(page, "0 items, 0 open.") {
			t.Error("item not deleted")
		}
		if code, _ := post(t, c, base+"/todo/delete/"+id, url.Values{"csrf": {token}}); code != 404 {
			t.Errorf("deleting a deleted item: %d, want 404", code)
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
		// An action on page 2 returns to page 2.
		id := itemRE.FindStringSubmatch(getPage(t, c, base+"/todo/?page=2"))[2]
		if _, loc := post(t, c, base+"/todo/toggle/"+id, url.Values{"csrf": {token}, "page": {"2"}}); loc != "/todo/?page=2" {
			t.Errorf("toggle on page 2 redirects to %q", loc)
		}
	})

	t.Run("wrong methods and paths", func(t *testing.T) {
		if code, _ := get(t, c, base+"/todo/add"); code != 405 {
			t.Errorf("GET /add: %d, want 405", code)
		}
		if code, _ := get(t, c, base+"/todo/nope"); code != 404 {
			t.Errorf("GET /nope: %d, want 404", code)
		}
	})
}

func getPage(t *testing.T, c *http.Client, u string) string {
	_, p := get(t, c, u)
	return p
}
