package demo

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The login, as a visitor does it: sign up in the to-do app, see who is signed in
// on every page, a form with a forged token refused, sign out from a static page,
// the modal login's wrong-password lock, a second account with its own list, and
// the modal signing in for real.
func TestBrowserLogin(t *testing.T) {
	b := browser(t)
	who := `(() => { const a = document.querySelector(".site-header [data-account]"), w = a.querySelector(".who");
		return w ? w.textContent + " / " + a.querySelector("button").textContent : a.textContent.trim(); })()`
	const password = "correct horse battery"

	t.Run("sign up", func(t *testing.T) {
		b.run(t, b.load("/todo/"),
			wait(`location.pathname === "/todo/signin"`),
			expect(t, "header", who, "Sign in"),
			chromedp.Click(chromedp.CSS(`main a[href="/todo/signup"]`)),
			wait(`location.pathname === "/todo/signup"`),
			chromedp.SendKeys(chromedp.CSS("#email"), "ada@example.com"),
			chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter),
			wait(`location.pathname === "/todo/" && !!document.querySelector(".todo-add")`),
			wait(who+` === "Signed in as ada@example.com / Sign out"`),
			chromedp.SendKeys(chromedp.CSS("#title"), "ada's item"+kb.Enter),
			wait(`!!document.querySelector(".todo-list .title") && document.querySelector(".todo-list .title").textContent === "ada's item"`),
			wait(`/ago|now/.test(document.querySelector(".todo-list time").textContent)`),
			b.shot(t, "todo-ada"),
		)
	})

	t.Run("a form with a forged token is refused", func(t *testing.T) {
		b.run(t, b.setQuiet(true),
			do(`document.querySelector(".todo-add [name=csrf]").value = "0".repeat(32)`),
			chromedp.SendKeys(chromedp.CSS("#title"), "forged"+kb.Enter),
			wait(`!!document.querySelector("h1") && document.querySelector("h1").textContent === "Forbidden"`),
			expect(t, "error style", `!!document.querySelector("main .alert-error")`, "true"),
			b.load("/todo/"),
			b.setQuiet(false),
			expect(t, "nothing added", `[...document.querySelectorAll(".todo-list .title")].map(e => e.textContent).join()`, "ada's item"),
		)
	})

	t.Run("a static page shows who is signed in and signs out", func(t *testing.T) {
		b.run(t, b.load("/gallery/"),
			wait(who+` === "Signed in as ada@example.com / Sign out"`),
			chromedp.Click(chromedp.CSS(`.site-header [data-account] button[type=submit]`)),
			wait(`location.pathname === "/gallery/" && document.readyState === "complete"`),
			wait(who+` === "Sign in"`),
			b.load("/todo/"),
			wait(`location.pathname === "/todo/signin"`),
		)
	})

	status := `document.querySelector("#login-status").textContent + " | " + document.querySelector("#login-status").className`
	t.Run("the modal login: wrong passwords lock the account", func(t *testing.T) {
		// The browser reports each 401 and 429 answer on the console: expected here.
		b.run(t, b.setQuiet(true), b.load("/gallery/login.html"),
			wait(`!!document.querySelector(".site-header [data-account] button")`),
			chromedp.Focus(chromedp.CSS(`main [data-open="login"]`)),
			chromedp.KeyEvent(kb.Enter),
			wait(`document.querySelector("#login").open`),
			expect(t, "email field focused", active, "login-email"),
			chromedp.SendKeys(chromedp.CSS("#login-email"), "ada@example.com"),
		)
		for i := 1; i <= 4; i++ {
			b.run(t, do(`document.querySelector("#login-status").textContent = ""`),
				chromedp.SetValue(chromedp.CSS("#login-password"), "wrong password"),
				chromedp.Focus(chromedp.CSS("#login-password")),
				chromedp.KeyEvent(kb.Enter),
				wait(`document.querySelector("#login-status").textContent !== ""`),
				expect(t, "wrong password", status, "Wrong email or password. | alert alert-error"))
		}
		b.run(t, do(`document.querySelector("#login-status").textContent = ""`),
			chromedp.SetValue(chromedp.CSS("#login-password"), "wrong password"),
			chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
			wait(`document.querySelector("#login-status").textContent !== ""`),
			expect(t, "locked", status, "Too many wrong passwords: try again in 60 seconds. | alert alert-error"),
			do(`document.querySelector("#login-status").textContent = ""`),
			chromedp.SetValue(chromedp.CSS("#login-password"), password),
			chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
			wait(`document.querySelector("#login-status").textContent !== ""`),
			expect(t, "still locked with the right password", `document.querySelector("#login-status").textContent.startsWith("Too many")`, "true"),
			b.shot(t, "login-locked"),
			chromedp.KeyEvent(kb.Escape),
			wait(`!document.querySelector("#login").open`),
			expect(t, "still signed out", who, "Sign in"),
		)
	})

	t.Run("another account sees only its own list", func(t *testing.T) {
		b.run(t, b.load("/todo/signup"), b.setQuiet(false),
			chromedp.SendKeys(chromedp.CSS("#email"), "bob@example.com"),
			chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter),
			wait(`location.pathname === "/todo/" && !!document.querySelector(".todo-add")`),
			expect(t, "empty", `document.querySelector(".lead").textContent`, "0 items, 0 open."),
			expect(t, "not ada's", `document.body.textContent.includes("ada's item")`, "false"),
			chromedp.SendKeys(chromedp.CSS("#title"), "bob's item"+kb.Enter),
			wait(`!!document.querySelector(".todo-list .title") && document.querySelector(".todo-list .title").textContent === "bob's item"`),
			chromedp.Click(chromedp.CSS(`.site-header [data-account] button[type=submit]`)),
			wait(`location.pathname === "/todo/signin"`),
		)
	})

	t.Run("the modal login signs in for real", func(t *testing.T) {
		b.run(t, b.load("/"),
			wait(`!!document.querySelector(".site-header [data-account] button")`),
			chromedp.Click(chromedp.CSS(`.site-header [data-account] button`)),
			wait(`document.querySelector("#login").open`),
			chromedp.SendKeys(chromedp.CSS("#login-email"), "bob@example.com"),
			chromedp.SendKeys(chromedp.CSS("#login-password"), password+kb.Enter),
			wait(`!document.querySelector("#login").open`),
			wait(who+` === "Signed in as bob@example.com / Sign out"`),
			b.load("/todo/"),
			expect(t, "bob's list", `[...document.querySelectorAll(".todo-list .title")].map(e => e.textContent).join()`, "bob's item"),
		)
	})
}
