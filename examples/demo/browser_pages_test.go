package demo

import (
	"context"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// sitePages are every page of the demo, with the navigation link that must be
// marked current on it ("" for none): the static pages, and those the CGI, PHP
// and WSGI pieces render.
func sitePages(t *testing.T) map[string]string {
	out := map[string]string{
		"/cgi-bin/":     "/cgi-bin/",
		"/php/":         "/php/",
		"/todo/signin":  "/todo/",
		"/todo/signup":  "/todo/",
		"/no-such-page": "",
	}
	for _, p := range pages(t) {
		url := "/" + strings.TrimSuffix(filepath.ToSlash(p), "index.html")
		switch {
		case url == "/":
			out[url] = "/"
		case url == "/404.html":
			out[url] = ""
		default:
			out[url] = "/" + path.Dir(filepath.ToSlash(p)) + "/"
		}
	}
	return out
}

// Every page, at a desktop's width and at a phone's (390 px): it renders with the
// shared header and footer, the right navigation link is current, no image is
// broken, nothing writes to the console, nothing overflows sideways; and a
// screenshot of each is kept.
func TestBrowserPages(t *testing.T) {
	b := browser(t)
	for _, width := range []int64{1100, 390} {
		b.run(t, b.viewport(width))
		for url, current := range sitePages(t) {
			name := strings.Trim(strings.NewReplacer("/", "-", ".html", "").Replace(url), "-")
			if name == "" {
				name = "home"
			}
			t.Run(name+"@"+map[bool]string{true: "desktop", false: "phone"}[width > 800], func(t *testing.T) {
				missing := url == "/no-such-page"
				if missing {
					b.run(t, b.setQuiet(true)) // the 404 itself is reported on the console
				}
				b.run(t, b.load(url),
					expect(t, "shared header", `document.querySelectorAll(".site-header nav a").length + " " + !!document.querySelector("footer.site-footer")`, "5 true"),
					expect(t, "current link", `(document.querySelector('.site-header a[aria-current="page"]') || {}).pathname || ""`, current),
					expect(t, "broken images", `[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src).join(" ")`, ""),
					expect(t, "sideways overflow (px)", overflow, "0"),
					b.shot(t, name))
				if missing {
					b.run(t, expect(t, "the one 404 page", `document.querySelector("h1").textContent`, "Page not found"),
						b.load("/"), b.setQuiet(false))
				}
			})
		}
	}
	b.run(t, b.viewport(1100))

	// The 404 page keeps the status, for a file and for each gateway's own 404.
	for _, url := range []string{"/gallery/nope.html", "/php/nope.php", "/cgi-bin/nope.cgi", "/todo/nope"} {
		t.Run("404 "+url, func(t *testing.T) {
			b.run(t, b.setQuiet(true))
			resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(b.base+url))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 404 {
				t.Errorf("status %d, want 404", resp.Status)
			}
			b.run(t, expect(t, "page", `document.querySelector("h1").textContent + " " + document.querySelector("[data-here]").textContent`, "Page not found "+url),
				b.load("/"), b.setQuiet(false))
		})
	}
}

// At a phone's width the navigation collapses behind a menu button that opens
// with the keyboard or the mouse and closes on Escape; pop-ups and dialogs dim
// the page behind them.
func TestBrowserMobile(t *testing.T) {
	b := browser(t)
	visible := `getComputedStyle(document.querySelector(".site-menu")).display !== "none"`
	b.run(t, b.viewport(390), b.load("/gallery/"),
		expect(t, "menu closed", visible, "false"),
		expect(t, "menu button shown", `getComputedStyle(document.querySelector(".menu-btn")).display !== "none"`, "true"),
		chromedp.Focus(chromedp.CSS(".menu-btn")),
		chromedp.KeyEvent(kb.Enter),
		expect(t, "menu opened by Enter", visible, "true"),
		expect(t, "state", `document.querySelector(".menu-btn").getAttribute("aria-expanded")`, "true"),
		expect(t, "no overflow with the menu open", overflow, "0"),
		b.shot(t, "menu-open"),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(kb.Escape),
		expect(t, "Escape closes", visible, "false"),
		expect(t, "focus back on the button", `document.activeElement.className`, "menu-btn"),
		chromedp.Click(chromedp.CSS(".menu-btn")),
		expect(t, "opened by a click", visible, "true"),
		chromedp.Click(chromedp.CSS(".menu-btn")),
		expect(t, "closed by a click", visible, "false"),
	)
	backdrop := `getComputedStyle(document.querySelector("%s"), "::backdrop").backgroundColor`
	b.run(t, b.load("/gallery/tooltips.html"),
		chromedp.Click(chromedp.CSS(`[popovertarget="pop-help"]`)),
		expect(t, "pop-up open", `document.querySelector("#pop-help").matches(":popover-open")`, "true"),
		expect(t, "pop-up backdrop", strings.Replace(backdrop, "%s", "#pop-help", 1), "rgba(10, 12, 18, 0.6)"),
		expect(t, "pop-up fits", `document.querySelector("#pop-help").getBoundingClientRect().right <= innerWidth`, "true"),
		b.shot(t, "popup"),
		chromedp.KeyEvent(kb.Escape),
		b.load("/gallery/login.html"),
		chromedp.Click(chromedp.CSS(`main [data-open="login"]`)),
		wait(`document.querySelector("#login").open`),
		expect(t, "dialog backdrop", strings.Replace(backdrop, "%s", "#login", 1), "rgba(10, 12, 18, 0.6)"),
		expect(t, "dialog fits", `document.querySelector("#login").getBoundingClientRect().right <= innerWidth`, "true"),
		b.shot(t, "login-dialog"),
	)
}

func TestBrowserDarkMode(t *testing.T) {
	b := browser(t)
	theme := `document.documentElement.dataset.theme`
	b.run(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}),
		b.load("/gallery/dark-mode.html"),
		expect(t, "follows the system", theme, "dark"),
		expect(t, "toggle state", `document.querySelector("[data-theme-toggle]").getAttribute("aria-pressed")`, "true"),
		expect(t, "dark background", `getComputedStyle(document.body).backgroundColor`, "rgb(20, 23, 29)"),
		b.shot(t, "dark-mode-dark"),
		chromedp.Click(chromedp.CSS(`header [data-theme-toggle]`)),
		expect(t, "switched", theme, "light"),
		expect(t, "remembered", `localStorage.getItem("theme")`, "light"),
		b.load("/"),
		expect(t, "kept on another page", theme, "light"),
		b.load("/cgi-bin/"),
		expect(t, "kept on the CGI page", theme, "light"),
		b.load("/gallery/dark-mode.html"),
		chromedp.Click(chromedp.CSS(`[data-theme-reset]`)),
		expect(t, "back to the system", theme, "dark"),
		expect(t, "forgotten", `String(localStorage.getItem("theme"))`, "null"),
	)
}
