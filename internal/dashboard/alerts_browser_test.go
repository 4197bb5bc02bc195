package dashboard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"gantry/internal/peertest"
)

// consoleErrors collects what the page reports as an error: exceptions,
// console.error and the browser's own log entries (a failed request).
func consoleErrors(t *testing.T, ctx context.Context) func() []string {
	var mu sync.Mutex
	var errs []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if x := e.ExceptionDetails.Exception; x != nil {
				msg += " " + x.Description
			}
			errs = append(errs, "exception: "+msg)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				errs = append(errs, "console.error: "+strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				errs = append(errs, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
		return err
	}))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// TestBrowserAlertBanners: a crash-looping pool and a saturated one show their
// banners, readable and inside the screen at desktop and phone sizes in both
// themes; the crash banner quotes the worker's stderr line and links to the pool;
// a dismissed banner stays away (across a page load) until its condition ends
// and comes back.
func TestBrowserAlertBanners(t *testing.T) {
	ctx := browser(t)
	errs := consoleErrors(t, ctx)
	gate := filepath.Join(t.TempDir(), "go")
	g := startGantry(t, setup{extra: wsgiRouteAt(t, "/crash/", 1, `import os, sys
def application(environ, start_response):
    sys.stderr.write("RuntimeError: <b>the database</b> is gone\n")
    sys.stderr.flush()
    os._exit(3)
`) + wsgiRouteAt(t, "/slow/", 1, fmt.Sprintf(`import os, time
def application(environ, start_response):
    while not os.path.exists(%q):
        time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done\n"]
`, gate))})
	c := client()
	peertest.WaitFor(t, 60*time.Second, "a crash-loop alert", func() bool {
		do(t, c, "GET", g.web+"/crash/", nil, nil)
		return len(alertsOf(t, g, "crash_loop")) > 0
	})
	// queue fills the slow pool: one request held, two waiting, until the gate opens.
	var wg sync.WaitGroup
	queue := func() {
		for range 3 {
			wg.Go(func() {
				if resp, err := c.Get(g.web + "/slow/"); err == nil {
					resp.Body.Close()
				}
			})
		}
	}
	release := func() {
		os.WriteFile(gate, nil, 0o644)
		wg.Wait()
		os.Remove(gate)
	}
	t.Cleanup(release)
	queue()
	peertest.WaitFor(t, 30*time.Second, "a saturation alert", func() bool { return len(alertsOf(t, g, "saturated")) > 0 })

	run(t, ctx, chromedp.Navigate(g.admin+"/"))
	crash := `document.querySelector('#alerts .alert-crash_loop')`
	slow := `document.querySelector('#alerts .alert-saturated')`
	waitJS(t, ctx, "both banners", crash+` !== null && `+slow+` !== null`)
	text := eval(t, ctx, chromedp.Evaluate[string](crash+`.textContent`))
	for _, want := range []string{"crash loop", "/crash/", "exit status 3", "RuntimeError: <b>the database</b> is gone", "show the pool", "dismiss"} {
		if !strings.Contains(text, want) {
			t.Errorf("crash banner %q lacks %q", text, want)
		}
	}
	if eval(t, ctx, chromedp.Evaluate[bool](`document.querySelector('#alerts b b') !== null`)) {
		t.Error("the worker's stderr line became markup")
	}

	for _, size := range []struct{ w, h int64 }{{1280, 900}, {390, 844}} {
		for _, theme := range []string{"light", "dark"} {
			run(t, ctx, chromedp.EmulateViewport(size.w, size.h))
			eval(t, ctx, chromedp.Evaluate[bool](fmt.Sprintf(`localStorage.setItem("gantry-theme", %q), true`, theme)))
			run(t, ctx, chromedp.Reload())
			waitJS(t, ctx, "banners after load", crash+` !== null && `+slow+` !== null && document.documentElement.dataset.theme === `+fmt.Sprintf("%q", theme))
			// Every part of each banner is on screen, nothing spills sideways, and
			// the text stands out from its background.
			bad := eval(t, ctx, chromedp.Evaluate[[]string](`(() => {
				const out = [], W = document.documentElement.clientWidth;
				if (document.documentElement.scrollWidth > W + 1) out.push("page scrolls sideways: " + document.documentElement.scrollWidth + " > " + W);
				for (const a of document.querySelectorAll("#alerts .alert")) {
					for (const e of [a, a.querySelector(".alert-dismiss"), a.querySelector("b")]) {
						const r = e.getBoundingClientRect();
						if (r.width === 0 || r.left < 0 || r.right > W + 1) out.push(a.dataset.id + ": " + e.className + " at " + r.left + ".." + r.right);
					}
					const fg = getComputedStyle(a).color, bg = getComputedStyle(a).backgroundColor;
					if (fg === bg) out.push(a.dataset.id + ": text colour " + fg + " on " + bg);
				}
				return out;
			})()`))
			if len(bad) > 0 {
				t.Errorf("%dx%d %s: %q", size.w, size.h, theme, bad)
			}
		}
	}

	// The link shows the pool's rows on the overview.
	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-tab="log"]`)))
	clickJS(t, ctx, `#alerts .alert-crash_loop .alert-link`)
	waitJS(t, ctx, "the crash pool's rows flashed", `!document.getElementById("tab-overview").hidden &&
		document.querySelectorAll('#pools tr.flash').length > 0 &&
		Array.from(document.querySelectorAll('#pools tr.flash')).every(tr => tr.dataset.pool === "default /crash/")`)

	// Dismissed: gone, and still gone after more samples and a page load.
	clickJS(t, ctx, `#alerts .alert-saturated .alert-dismiss`)
	waitJS(t, ctx, "the saturation banner dismissed", slow+` === null && `+crash+` !== null`)
	n := eval(t, ctx, chromedp.Evaluate[int](`Number(document.getElementById("chart-requests").dataset.samples)`))
	waitJS(t, ctx, "three more samples", fmt.Sprintf(`Number(document.getElementById("chart-requests").dataset.samples) >= %d`, n+3))
	run(t, ctx, chromedp.Reload())
	waitJS(t, ctx, "the page again", crash+` !== null`)
	if len(alertsOf(t, g, "saturated")) == 0 {
		t.Fatal("the saturation alert ended before the dismissal was checked")
	}
	if eval(t, ctx, chromedp.Evaluate[bool](slow+` !== null`)) {
		t.Fatal("a dismissed banner came back while its condition lasted")
	}
	// The queue drains and fills again: a new occurrence, shown again.
	release()
	waitJS(t, ctx, "the condition over", `!localStorage.getItem("gantry-dismissed-alerts").includes("saturated")`)
	queue()
	waitJS(t, ctx, "the new occurrence's banner", slow+` !== null`)

	if e := errs(); len(e) > 0 {
		t.Errorf("console errors: %q", e)
	}
}

// clickJS clicks the element sel finds, in the page in one step: the banners are
// drawn anew with every sample, so a node chromedp found may be gone by the time
// it clicks it ("Could not find node with given id").
func clickJS(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitJS(t, ctx, "a click on "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel))
}
