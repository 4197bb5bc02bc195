package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/accesslog"
	"gantry/internal/peertest"
	"gantry/internal/peertest/chromium"
)

// chromeDo runs browser actions, each bounded so that a missing element fails
// the test instead of hanging it.
func chromeDo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	chromium.Do(t, ctx, steps...)
}

// chromeEval evaluates expr, waiting for the promise it may return.
func chromeEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// chromeWait waits for a JavaScript expression to be true; errors count as
// false, since while a page navigates there is no document to ask.
func chromeWait(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	peertest.WaitFor(t, 30*time.Second, what, func() bool {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}

// Chromium renders a directory listing: names that look like markup are text,
// dotfiles are not listed, a sort link orders by size, and a directory's link
// and then a file's link lead where they say. A page Chromium asks for with its
// own Accept-Encoding comes compressed and decodes to the page.
func TestBrowserBrowseAndCompression(t *testing.T) {
	ctx := chromium.Start(t)
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	xss := `<img src=x onerror="document.title='xss'">.txt`
	writeFile(t, filepath.Join(files, xss), "x")
	writeFile(t, filepath.Join(files, "small.txt"), "small file")
	writeFile(t, filepath.Join(files, "big.txt"), strings.Repeat("big file\n", 300))
	writeFile(t, filepath.Join(files, ".env"), "SECRET_KEY=1")
	writeFile(t, filepath.Join(files, "sub", "inner.txt"), "the inner file")
	var para strings.Builder
	for i := range 400 {
		fmt.Fprintf(&para, "<p>Paragraph %d of a page long enough to be worth compressing.</p>\n", i)
	}
	page := "<!DOCTYPE html><html><head><title>compressed page</title></head><body><h1 id=top>Compressed</h1>\n" +
		para.String() + "<p id=last>the end</p></body></html>\n"
	writeFile(t, filepath.Join(dir, "www", "page.html"), page)

	var mu sync.Mutex
	sent := map[string]string{} // path -> the Accept-Encoding Chromium sent
	got := map[string]int64{}   // path -> bytes gantry sent
	_, base := startObserved(t, fmt.Sprintf(`
[server]
listen = ["127.0.0.1:0"]
access_log = "off"
[admin]
listen = "off"
[[site]]
root = %q
  [[site.route]]
  path = "/files/"
  static = %q
  browse = true
`, filepath.Join(dir, "www"), files), func(rec *accesslog.Record) {
		mu.Lock()
		defer mu.Unlock()
		sent[rec.Request.URL.Path] = rec.Request.Header.Get("Accept-Encoding")
		got[rec.Request.URL.Path] = rec.Bytes
	})

	t.Run("listing", func(t *testing.T) {
		chromeDo(t, ctx, chromedp.Navigate(base+"/files/"), chromedp.WaitVisible(chromedp.CSS("h1")))
		if h1 := chromeEval[string](t, ctx, `document.querySelector("h1").textContent`); h1 != "Index of /files/" {
			t.Errorf("heading %q", h1)
		}
		names := chromeEval[[]string](t, ctx, `Array.from(document.querySelectorAll("tbody td:first-child a")).map(a => a.textContent)`)
		want := []string{"sub/", xss, "big.txt", "small.txt"}
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("listed %q, want %q (by name, directories first, no dotfile)", names, want)
		}
		if n := chromeEval[int](t, ctx, `document.querySelectorAll("img, script").length`); n != 0 || chromeEval[string](t, ctx, `document.title`) == "xss" {
			t.Errorf("a file name became markup: %d elements, title %q", n, chromeEval[string](t, ctx, `document.title`))
		}
	})
	t.Run("sort by size", func(t *testing.T) {
		chromeDo(t, ctx, chromedp.Click(chromedp.CSS(`thead a[href*="sort=size"]`)))
		chromeWait(t, ctx, "the size-sorted listing", `location.search.includes("sort=size")`)
		names := chromeEval[[]string](t, ctx, `Array.from(document.querySelectorAll("tbody td:first-child a")).map(a => a.textContent)`)
		want := []string{"sub/", xss, "small.txt", "big.txt"}
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Errorf("sorted by size %q, want %q", names, want)
		}
	})
	t.Run("follow links", func(t *testing.T) {
		chromeDo(t, ctx, chromedp.Click(chromedp.CSS(`tbody a[href="./sub/"]`)))
		chromeWait(t, ctx, "the subdirectory's listing", `location.pathname === "/files/sub/" && document.body.textContent.includes("inner.txt")`)
		chromeDo(t, ctx, chromedp.Click(chromedp.CSS(`tbody a[href="./inner.txt"]`)))
		chromeWait(t, ctx, "the file", `location.pathname === "/files/sub/inner.txt" && document.body.innerText.trim() === "the inner file"`)
		chromeDo(t, ctx, chromedp.Navigate(base+"/files/sub/"), chromedp.WaitVisible(chromedp.CSS("h1")))
		chromeDo(t, ctx, chromedp.Click(chromedp.CSS(`tbody a[href="../"]`)))
		chromeWait(t, ctx, "the parent listing", `location.pathname === "/files/" && document.body.textContent.includes("big.txt")`)
	})
	t.Run("compressed page", func(t *testing.T) {
		chromeDo(t, ctx, chromedp.Navigate(base+"/page.html"), chromedp.WaitVisible(chromedp.CSS("#last")))
		if n := chromeEval[int](t, ctx, `document.querySelectorAll("p").length`); n != 401 {
			t.Errorf("the page has %d paragraphs, want 401", n)
		}
		// Same origin: every response header is readable.
		enc := chromeEval[string](t, ctx, `fetch("/page.html", {cache: "no-store"}).then(r => r.headers.get("content-encoding") || "")`)
		text := chromeEval[string](t, ctx, `fetch("/page.html", {cache: "no-store"}).then(r => r.text())`)
		if text != page {
			t.Errorf("fetch decoded %d bytes, want the %d of the page", len(text), len(page))
		}
		mu.Lock()
		ae, n := sent["/page.html"], got["/page.html"]
		mu.Unlock()
		t.Logf("Chromium sent Accept-Encoding %q and got %q (%d bytes for %d)", ae, enc, n, len(page))
		if enc == "" || !strings.Contains(ae, enc) {
			t.Errorf("Content-Encoding %q for Accept-Encoding %q", enc, ae)
		}
		if n <= 0 || n >= int64(len(page)) {
			t.Errorf("gantry sent %d bytes of a %d byte page", n, len(page))
		}
	})
}
