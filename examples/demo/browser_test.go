package demo

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"gantry/internal/peertest"
)

// browser starts headless Chromium and a file server for the demo site.
// It returns a function that runs actions in one tab and fails the test on
// any JavaScript exception the page throws.
func browser(t *testing.T) (base string, run func(...step)) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	bin := peertest.Binary(t, "chromium", "chromium-browser")
	site := httptest.NewServer(http.FileServer(http.Dir(".")))
	t.Cleanup(site.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1100, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	var mu sync.Mutex
	var exceptions []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			exceptions = append(exceptions, (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			t.Errorf("JavaScript exception: %s", e)
		}
	})
	return site.URL, func(steps ...step) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
}

type step = chromedp.Action[chromedp.Void]

// expect evaluates a JavaScript expression and compares its string value.
func expect(t *testing.T, what, js, want string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		got, err := chromedp.Evaluate[any](js)(ctx, tg)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if s := fmt.Sprint(got); s != want {
			t.Errorf("%s: %s = %q, want %q", what, js, s, want)
		}
		return nil
	})
}

// wait polls a JavaScript condition until it is true; the page scripts are
// deferred, so a page is ready when they have wired it up. Evaluation errors are
// retried too: right after a navigation the old page's JavaScript context may be
// gone before the new one exists ("Cannot find context with specified id").
func wait(js string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, err := chromedp.Evaluate[bool](js)(ctx, tg)
			if err == nil && ok {
				return nil
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = fmt.Errorf("still false")
				}
				return fmt.Errorf("waiting for %s: %w", js, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

const active = `document.activeElement.id || document.activeElement.textContent.trim()`

func TestBrowserKeyboard(t *testing.T) {
	base, run := browser(t)
	load := func(page, ready string) step {
		return chromedp.Steps(chromedp.Navigate(base+page), wait(ready))
	}

	t.Run("vertical tabs follow arrow keys", func(t *testing.T) {
		run(load("/gallery/tabs.html", `document.readyState === "complete"`),
			chromedp.Focus(chromedp.CSS("#tab-profile")),
			chromedp.KeyEvent(kb.ArrowDown),
			expect(t, "focus", active, "tab-security"),
			expect(t, "selected", `document.querySelector("#tab-security").getAttribute("aria-selected")`, "true"),
			expect(t, "panels", `[...document.querySelectorAll("[role=tabpanel]")].map(p => p.hidden).join()`, "true,false,true,true"),
			chromedp.KeyEvent(kb.End),
			expect(t, "focus after End", active, "tab-billing"),
			chromedp.KeyEvent(kb.ArrowDown),
			expect(t, "wraps to first", active, "tab-profile"),
			expect(t, "one tab stop", `[...document.querySelectorAll("[role=tab]")].map(b => b.tabIndex).join()`, "0,-1,-1,-1"),
		)
	})

	t.Run("accordion opens with Enter and moves with arrows", func(t *testing.T) {
		run(load("/gallery/accordion.html", `document.readyState === "complete"`),
			chromedp.Focus(chromedp.CSS("#acc1")),
			chromedp.KeyEvent(kb.ArrowDown),
			expect(t, "focus", active, "acc2"),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "expanded", `document.querySelector("#acc2").getAttribute("aria-expanded")`, "true"),
			expect(t, "panel shown", `document.querySelector("#acc2-panel").hidden`, "false"),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "collapsed", `document.querySelector("#acc2-panel").hidden`, "true"),
		)
	})

	t.Run("modal image traps focus, Escape closes and returns focus", func(t *testing.T) {
		run(load("/gallery/modal-image.html", `document.readyState === "complete"`),
			chromedp.Focus(chromedp.CSS(".thumbs button:nth-child(2)")),
			chromedp.KeyEvent(kb.Enter),
			wait(`document.querySelector("#lightbox").open`),
			expect(t, "focus inside", `document.querySelector("#lightbox").contains(document.activeElement)`, "true"),
			expect(t, "picture", `document.querySelector(".lightbox-img").alt`, "A lake below green hills"),
			expect(t, "title", `document.querySelector("#lightbox-title").textContent`, "A lake below green hills"),
			chromedp.KeyEvent(kb.Tab),
			expect(t, "Tab stays inside", `document.querySelector("#lightbox").contains(document.activeElement)`, "true"),
			chromedp.KeyEvent(kb.Escape),
			wait(`!document.querySelector("#lightbox").open`),
			expect(t, "focus back", `document.activeElement === document.querySelector(".thumbs button:nth-child(2)")`, "true"),
		)
	})

	t.Run("login dialog focuses the email field and is visual only", func(t *testing.T) {
		run(load("/gallery/login.html", `document.readyState === "complete"`),
			chromedp.Click(chromedp.CSS(`[data-open="login"]`)),
			wait(`document.querySelector("#login").open`),
			expect(t, "first field focused", active, "login-email"),
			chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)),
			expect(t, "Shift+Tab to the close button", `document.activeElement.getAttribute("aria-label")`, "Close"),
			chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)),
			expect(t, "Shift+Tab wraps to the last control", active, "Sign in"),
			chromedp.KeyEvent(kb.Tab),
			expect(t, "Tab wraps to the first control", `document.activeElement.getAttribute("aria-label")`, "Close"),
			chromedp.SendKeys(chromedp.CSS("#login-email"), "ada@example.com"),
			chromedp.SendKeys(chromedp.CSS("#login-password"), "secret"+kb.Enter),
			expect(t, "message", `document.querySelector("#login-status").textContent.includes("nothing was sent")`, "true"),
			expect(t, "still on the page", `location.pathname`, "/gallery/login.html"),
			chromedp.KeyEvent(kb.Escape),
			wait(`!document.querySelector("#login").open`),
			expect(t, "focus back", `document.activeElement.dataset.open`, "login"),
		)
	})

	t.Run("table sorts by header buttons and pages", func(t *testing.T) {
		firstAge := `document.querySelector("tbody tr td:nth-child(4)").textContent`
		run(load("/gallery/table.html", `document.querySelector("#people-status").textContent !== ""`),
			expect(t, "rows per page", `document.querySelectorAll("tbody tr").length`, "6"),
			expect(t, "status", `document.querySelector("#people-status").textContent`, "Showing rows 1–6 of 22"),
			chromedp.Click(chromedp.CSS(`th:nth-child(4) button`)),
			expect(t, "ascending", firstAge, "36"),
			expect(t, "aria-sort", `document.querySelector("th:nth-child(4)").getAttribute("aria-sort")`, "ascending"),
			chromedp.Click(chromedp.CSS(`th:nth-child(4) button`)),
			expect(t, "descending", firstAge, "89"),
			chromedp.Click(chromedp.CSS(`#people-pager button[aria-label="Page 4"]`)),
			expect(t, "last page", `document.querySelectorAll("tbody tr").length`, "4"),
			expect(t, "next disabled", `[...document.querySelectorAll("#people-pager button")].pop().disabled`, "true"),
			expect(t, "status", `document.querySelector("#people-status").textContent`, "Showing rows 19–22 of 22"),
		)
	})

	t.Run("tooltip shows on focus and hides on Escape", func(t *testing.T) {
		vis := `getComputedStyle(document.querySelector("#tip-save")).visibility`
		run(load("/gallery/tooltips.html", `document.readyState === "complete"`),
			expect(t, "hidden at first", vis, "hidden"),
			chromedp.Focus(chromedp.CSS(`[aria-describedby="tip-save"]`)),
			expect(t, "shown on focus", vis, "visible"),
			chromedp.KeyEvent(kb.Escape),
			expect(t, "hidden on Escape", vis, "hidden"),
			chromedp.Click(chromedp.CSS(`[popovertarget="pop-help"]`)),
			expect(t, "pop-up open", `document.querySelector("#pop-help").matches(":popover-open")`, "true"),
			chromedp.KeyEvent(kb.Escape),
			expect(t, "pop-up closed", `document.querySelector("#pop-help").matches(":popover-open")`, "false"),
		)
	})

	t.Run("dismissing an alert moves focus to the next one", func(t *testing.T) {
		run(load("/gallery/alerts.html", `document.readyState === "complete"`),
			chromedp.Focus(chromedp.CSS(`.alert [data-dismiss]`)),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "alerts left", `document.querySelectorAll("main .alert").length`, "3"),
			expect(t, "focus", `document.activeElement.getAttribute("aria-label")`, "Dismiss success message"),
			chromedp.Click(chromedp.CSS(`[data-toast="Settings saved."]`)),
			expect(t, "toast in live region", `document.querySelector(".toasts").textContent.includes("Settings saved.")`, "true"),
		)
	})
}

func TestBrowserDarkMode(t *testing.T) {
	base, run := browser(t)
	theme := `document.documentElement.dataset.theme`
	run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}),
		chromedp.Navigate(base+"/gallery/dark-mode.html"),
		wait(`document.readyState === "complete"`),
		expect(t, "follows the system", theme, "dark"),
		expect(t, "toggle state", `document.querySelector("[data-theme-toggle]").getAttribute("aria-pressed")`, "true"),
		expect(t, "dark background", `getComputedStyle(document.body).backgroundColor`, "rgb(20, 23, 29)"),
		chromedp.Click(chromedp.CSS(`header [data-theme-toggle]`)),
		expect(t, "switched", theme, "light"),
		expect(t, "remembered", `localStorage.getItem("theme")`, "light"),
		chromedp.Navigate(base+"/"),
		wait(`document.readyState === "complete"`),
		expect(t, "kept on another page", theme, "light"),
		chromedp.Navigate(base+"/gallery/dark-mode.html"),
		wait(`document.readyState === "complete"`),
		chromedp.Click(chromedp.CSS(`[data-theme-reset]`)),
		expect(t, "back to the system", theme, "dark"),
		expect(t, "forgotten", `String(localStorage.getItem("theme"))`, "null"),
	)
}

// Every page loads without a JavaScript exception and without a request
// that fails (the browser's view of the link check).
func TestBrowserPagesLoadCleanly(t *testing.T) {
	base, run := browser(t)
	for _, p := range pages(t) {
		url := base + "/" + strings.TrimSuffix(p, "index.html")
		run(chromedp.Navigate(url),
			wait(`document.readyState === "complete"`),
			expect(t, p+": images that did not load",
				`[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src).join(" ")`, ""))
	}
}
