package demo

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Each gallery piece does its job with the keyboard and with the mouse.
func TestBrowserGallery(t *testing.T) {
	b := browser(t)

	t.Run("vertical tabs follow arrow keys", func(t *testing.T) {
		b.run(t, b.load("/gallery/tabs.html"),
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
			chromedp.Click(chromedp.CSS("#tab-billing")),
			expect(t, "a click selects", `document.querySelector("#panel-billing").hidden`, "false"),
		)
	})

	t.Run("accordion opens with Enter and moves with arrows", func(t *testing.T) {
		b.run(t, b.load("/gallery/accordion.html"),
			chromedp.Focus(chromedp.CSS("#acc1")),
			chromedp.KeyEvent(kb.ArrowDown),
			expect(t, "focus", active, "acc2"),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "expanded", `document.querySelector("#acc2").getAttribute("aria-expanded")`, "true"),
			expect(t, "panel shown", `document.querySelector("#acc2-panel").hidden`, "false"),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "collapsed", `document.querySelector("#acc2-panel").hidden`, "true"),
			chromedp.Click(chromedp.CSS("#acc2")),
			expect(t, "a click opens", `document.querySelector("#acc2-panel").hidden`, "false"),
		)
	})

	t.Run("modal image traps focus, Escape closes and returns focus", func(t *testing.T) {
		b.run(t, b.load("/gallery/modal-image.html"),
			chromedp.Focus(chromedp.CSS(".thumbs button:nth-child(2)")),
			chromedp.KeyEvent(kb.Enter),
			wait(`document.querySelector("#lightbox").open`),
			expect(t, "focus inside", `document.querySelector("#lightbox").contains(document.activeElement)`, "true"),
			expect(t, "picture", `document.querySelector(".lightbox-img").alt`, "A lake below green hills"),
			chromedp.KeyEvent(kb.Tab),
			expect(t, "Tab stays inside", `document.querySelector("#lightbox").contains(document.activeElement)`, "true"),
			chromedp.KeyEvent(kb.Escape),
			wait(`!document.querySelector("#lightbox").open`),
			expect(t, "focus back", `document.activeElement === document.querySelector(".thumbs button:nth-child(2)")`, "true"),
			chromedp.Click(chromedp.CSS(".thumbs button:nth-child(3)")),
			wait(`document.querySelector("#lightbox").open`),
			expect(t, "a click opens the third", `document.querySelector(".lightbox-img").alt`, "A city at night"),
			chromedp.KeyEvent(kb.Escape),
		)
	})

	t.Run("table sorts by header buttons and pages", func(t *testing.T) {
		firstAge := `document.querySelector("tbody tr td:nth-child(4)").textContent`
		b.run(t, b.load("/gallery/table.html"),
			expect(t, "status", `document.querySelector("#people-status").textContent`, "Showing rows 1–6 of 22"),
			chromedp.Click(chromedp.CSS(`th:nth-child(4) button`)),
			expect(t, "ascending", firstAge, "36"),
			chromedp.Focus(chromedp.CSS(`th:nth-child(4) button`)),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "descending by keyboard", firstAge, "89"),
			chromedp.Click(chromedp.CSS(`#people-pager button[aria-label="Page 4"]`)),
			expect(t, "last page", `document.querySelectorAll("tbody tr").length`, "4"),
		)
	})

	t.Run("tooltip on focus and hover, pop-up on a press", func(t *testing.T) {
		vis := `getComputedStyle(document.querySelector("#tip-save")).visibility`
		b.run(t, b.load("/gallery/tooltips.html"),
			expect(t, "hidden at first", vis, "hidden"),
			chromedp.Focus(chromedp.CSS(`[aria-describedby="tip-save"]`)),
			expect(t, "shown on focus", vis, "visible"),
			chromedp.KeyEvent(kb.Escape),
			expect(t, "hidden on Escape", vis, "hidden"),
			hover(`[aria-describedby="tip-share"]`),
			expect(t, "shown on hover", `getComputedStyle(document.querySelector("#tip-share")).visibility`, "visible"),
			chromedp.Click(chromedp.CSS(`[popovertarget="pop-help"]`)),
			expect(t, "pop-up open", `document.querySelector("#pop-help").matches(":popover-open")`, "true"),
			chromedp.KeyEvent(kb.Escape),
			expect(t, "pop-up closed", `document.querySelector("#pop-help").matches(":popover-open")`, "false"),
		)
	})

	t.Run("alerts dismiss and toast", func(t *testing.T) {
		b.run(t, b.load("/gallery/alerts.html"),
			chromedp.Focus(chromedp.CSS(`.alert [data-dismiss]`)),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "alerts left", `document.querySelectorAll("main .alert").length`, "3"),
			expect(t, "focus", `document.activeElement.getAttribute("aria-label")`, "Dismiss success message"),
			chromedp.Click(chromedp.CSS(`[data-toast="Settings saved."]`)),
			expect(t, "toast", `document.querySelector(".toasts").textContent.includes("Settings saved.")`, "true"),
		)
	})

	t.Run("animated buttons: busy, then done", func(t *testing.T) {
		b.run(t, b.load("/gallery/buttons.html"),
			chromedp.Focus(chromedp.CSS("[data-load]")),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "busy", `document.querySelector("[data-load]").getAttribute("aria-busy")`, "true"),
			wait(`document.querySelector("#load-status").textContent.includes("saved")`),
			expect(t, "no longer busy", `document.querySelector("[data-load]").hasAttribute("aria-busy")`, "false"),
			hover(".anim-lift"),
			wait(`getComputedStyle(document.querySelector(".anim-lift")).transform !== "none"`),
			chromedp.Click(chromedp.CSS("[data-load]")),
			expect(t, "busy after a click", `document.querySelector("[data-load]").getAttribute("aria-busy")`, "true"),
		)
	})

	t.Run("parallax: layers follow the scroll, the form is centred", func(t *testing.T) {
		b.run(t, b.load("/gallery/parallax.html"),
			expect(t, "centred", `(() => { const r = document.querySelector(".parallax-form").getBoundingClientRect(),
				p = document.querySelector(".parallax").getBoundingClientRect();
				return Math.abs((r.left - p.left) - (p.right - r.right)) < 2; })()`, "true"),
			do(`scrollTo(0, 400)`),
			wait(`document.querySelector("[data-parallax]").style.getPropertyValue("--scroll") !== "" &&
				Number(document.querySelector("[data-parallax]").style.getPropertyValue("--scroll")) > 0`),
			chromedp.SendKeys(chromedp.CSS("#trip-name"), "Ada Lovelace"),
			chromedp.SendKeys(chromedp.CSS("#trip-email"), "ada@example.com"+kb.Enter),
			expect(t, "sent", `document.querySelector("#trip-status").textContent.includes("ready")`, "true"),
		)
	})

	t.Run("image overlay on keyboard focus and on hover", func(t *testing.T) {
		shown := `getComputedStyle(document.querySelector(".overlay:nth-child(%d) figcaption")).transform`
		b.run(t, b.load("/gallery/overlay.html"),
			expect(t, "below the picture at first", fmtJS(shown, 3)+` !== "none"`, "true"),
			chromedp.Focus(chromedp.CSS(".overlay:nth-child(1) a")),
			wait(fmtJS(shown, 1)+` === "none"`),
			hover(".overlay:nth-child(2) img"),
			wait(fmtJS(shown, 2)+` === "none"`),
		)
	})

	t.Run("image filters by slider keys and mouse", func(t *testing.T) {
		filter := `getComputedStyle(document.querySelector("#filter-img")).filter`
		b.run(t, b.load("/gallery/filters.html"),
			chromedp.Focus(chromedp.CSS("#f-blur")),
			chromedp.KeyEvent(kb.ArrowRight),
			chromedp.KeyEvent(kb.ArrowRight),
			expect(t, "output", `document.querySelector("#f-blur-out").textContent`, "2px"),
			expect(t, "blurred", filter, "blur(2px) grayscale(0) sepia(0) hue-rotate(0deg)"),
			chromedp.Focus(chromedp.CSS("#f-grayscale")),
			chromedp.KeyEvent(kb.End),
			expect(t, "grey", filter, "blur(2px) grayscale(1) sepia(0) hue-rotate(0deg)"),
			chromedp.Click(chromedp.CSS(`button[type=reset]`)),
			wait(filter+` === "blur(0px) grayscale(0) sepia(0) hue-rotate(0deg)"`),
			chromedp.Click(chromedp.CSS("#f-sepia")), // the middle of the track: about half
			wait(`Number(document.querySelector("#f-sepia").value) > 30`),
		)
	})

	t.Run("steps walk with Back and Forward", func(t *testing.T) {
		shownStep := `document.querySelector("[data-step-panel]:not([hidden])").dataset.stepPanel + " " + location.search`
		b.run(t, b.load("/gallery/steps.html"),
			expect(t, "first", shownStep, "1 "),
			expect(t, "no previous", `document.querySelector('[data-step-go="-1"]').disabled`, "true"),
			chromedp.Click(chromedp.CSS(`[data-step-go="1"]`)),
			expect(t, "second", shownStep, "2 ?step=2"),
			chromedp.Focus(chromedp.CSS(`[data-step="3"]`)),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "third by keyboard", shownStep, "3 ?step=3"),
			expect(t, "focus on the step", `document.activeElement.id`, "step3-h"),
			chromedp.NavigateBack(),
			wait(`location.search === "?step=2"`),
			expect(t, "Back", shownStep, "2 ?step=2"),
			chromedp.NavigateBack(),
			wait(`location.search === ""`),
			expect(t, "Back again", shownStep, "1 "),
			chromedp.NavigateForward(),
			wait(`location.search === "?step=2"`),
			expect(t, "Forward", shownStep, "2 ?step=2"),
		)
	})

	t.Run("equal heights", func(t *testing.T) {
		heights := `new Set([...document.querySelectorAll(".grid.equal > .card, .grid:not(.equal) > .card")].map(c => c.offsetHeight)).size`
		b.run(t, b.load("/gallery/equal-height.html"),
			expect(t, "one height", heights, "1"),
			expect(t, "buttons line up", `new Set([...document.querySelectorAll(".grid .card .btn")].map(a => a.getBoundingClientRect().bottom)).size`, "1"),
			chromedp.Focus(chromedp.CSS("[data-toggle-class=equal]")),
			chromedp.KeyEvent(" "),
			expect(t, "own heights", heights, "3"),
			chromedp.Click(chromedp.CSS("[data-toggle-class=equal]")),
			expect(t, "equal again", heights, "1"),
		)
	})

	t.Run("hide and show", func(t *testing.T) {
		b.run(t, b.load("/gallery/hide-show.html"),
			expect(t, "hidden", `document.querySelector("#more-details").hidden`, "true"),
			chromedp.Focus(chromedp.CSS("[data-disclose]")),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "shown", `document.querySelector("#more-details").hidden + " " + document.querySelector("[data-disclose]").getAttribute("aria-expanded")`, "false true"),
			chromedp.Click(chromedp.CSS("[data-disclose]")),
			expect(t, "hidden by a click", `document.querySelector("#more-details").hidden`, "true"),
			chromedp.Click(chromedp.CSS(`[data-target="#note"]`)),
			expect(t, "class on", `document.querySelector("#note").className + " " + document.querySelector('[data-target="#note"]').getAttribute("aria-pressed")`, "note highlight true"),
		)
	})

	t.Run("thumbnail preview before upload", func(t *testing.T) {
		pic := filepath.Join(t.TempDir(), "dot.png")
		m := image.NewNRGBA(image.Rect(0, 0, 40, 30))
		m.Set(1, 1, color.NRGBA{255, 0, 0, 255})
		f, err := os.Create(pic)
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, m)
		f.Close()
		b.run(t, b.load("/gallery/preview.html"),
			expect(t, "nothing yet", `document.querySelector("#pick-preview").hidden`, "true"),
			chromedp.SetUploadFiles(chromedp.CSS("#pick"), []string{pic}),
			wait(`!document.querySelector("#pick-preview").hidden && document.querySelector("#pick-preview img").naturalWidth === 40`),
			expect(t, "a local blob", `document.querySelector("#pick-preview img").src.startsWith("blob:")`, "true"),
			expect(t, "caption", `document.querySelector("#pick-preview figcaption").textContent.startsWith("dot.png")`, "true"),
		)
	})

	t.Run("theme switcher: five themes, kept", func(t *testing.T) {
		theme := `document.documentElement.dataset.theme`
		b.run(t, b.load("/gallery/themes.html"),
			chromedp.Click(chromedp.CSS(`input[value=sepia]`)),
			expect(t, "sepia", theme, "sepia"),
			expect(t, "sepia background", `getComputedStyle(document.body).backgroundColor`, "rgb(244, 236, 216)"),
			chromedp.KeyEvent(kb.ArrowDown), // a radio group moves with the arrows
			expect(t, "ocean by keyboard", theme, "ocean"),
			b.shot(t, "themes-ocean"),
			b.load("/php/"),
			expect(t, "kept on the PHP page", theme, "ocean"),
			b.load("/gallery/themes.html"),
			expect(t, "the choice is shown", `document.querySelector("input[value=ocean]").checked`, "true"),
			chromedp.Click(chromedp.CSS(`[data-theme-reset]`)),
		)
	})

	t.Run("personal card", func(t *testing.T) {
		b.run(t, b.load("/gallery/profile.html"),
			expect(t, "who", `document.querySelector("#profile-name").textContent + ", " + document.querySelector(".role").textContent`, "John Doe, Architect & Engineer"),
			chromedp.Focus(chromedp.CSS(".profile [data-toggle-class]")),
			chromedp.KeyEvent(kb.Enter),
			expect(t, "following", `document.querySelector(".profile [data-toggle-class]").textContent`, "Following"),
			chromedp.Click(chromedp.CSS(".profile [data-toggle-class]")),
			expect(t, "not following", `document.querySelector(".profile [data-toggle-class]").getAttribute("aria-pressed")`, "false"),
		)
	})

	t.Run("pricing: monthly or yearly", func(t *testing.T) {
		pro := `document.querySelector("#p-pro").parentElement.querySelector(".price").textContent.trim()`
		b.run(t, b.load("/gallery/pricing.html"),
			expect(t, "monthly", pro, "$9 per month"),
			chromedp.Click(chromedp.CSS(`input[value=year]`)),
			expect(t, "yearly", pro, "$90 per year"),
			chromedp.KeyEvent(kb.ArrowUp),
			expect(t, "monthly by keyboard", pro, "$9 per month"),
			expect(t, "plans of one height", `new Set([...document.querySelectorAll(".pricing .card")].map(c => c.offsetHeight)).size`, "1"),
		)
	})

	t.Run("coming soon counts down", func(t *testing.T) {
		b.run(t, b.load("/gallery/coming-soon.html"),
			wait(`document.querySelector("#cd-seconds").textContent !== "--"`),
			chromedp.SendKeys(chromedp.CSS("#soon-email"), "ada@example.com"+kb.Enter),
			expect(t, "thanks", `document.querySelector("#soon-status").textContent.startsWith("Thanks")`, "true"),
		)
	})
}

// fmtJS puts n into a JavaScript template with one %d.
func fmtJS(js string, n int) string {
	return fmt.Sprintf(js, n)
}
