package dashboard

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/ban"
	"gantry/internal/peertest/chromium"
)

// browser starts a fresh headless Chromium and returns a context for chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	return chromium.Start(t, chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
}

// run runs browser actions, each step bounded so that a missing element fails the
// test instead of hanging it.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	chromium.Do(t, ctx, steps...)
}

func eval[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true. Errors count as false:
// while a page navigates there is no document to ask.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " | " + document.body.innerText.slice(0, 300)`))
			t.Fatalf("timed out waiting for %s (%s, last error %v); page: %s", what, expr, err, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrowserLoginChartsAndSorting(t *testing.T) {
	ctx := browser(t)
	g := startGantry(t, setup{password: "open sesame 42", packets: &fakePackets{}})

	// traffic of several statuses, so that the log has something to sort
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		paths := []string{"/", "/missing", "/.env", "/index.html"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if resp, err := http.Get(g.web + paths[i%len(paths)]); err == nil {
				resp.Body.Close()
			}
		}
	}()

	run(t, ctx, chromedp.Navigate(g.admin+"/"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if loc := eval(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/login") {
		t.Fatalf("not sent to the login page: %s", loc)
	}
	// a wrong password is refused with a message
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#password"), "wrong"), chromedp.Click(chromedp.CSS("#submit")))
	waitJS(t, ctx, "login error", `location.search.includes("error=bad") && !document.getElementById("login-error").hidden`)
	if msg := eval(t, ctx, chromedp.Text(chromedp.CSS("#login-error"))); !strings.Contains(msg, "Wrong password") {
		t.Fatalf("wrong password: %q", msg)
	}
	run(t, ctx, chromedp.SendKeys(chromedp.CSS("#password"), "open sesame 42"), chromedp.Click(chromedp.CSS("#submit")))
	waitJS(t, ctx, "dashboard after login", `location.pathname === "/" && document.querySelector("#chart-requests canvas") !== null`)

	// the graphs follow the event stream: the sample count grows and the card shows a rate
	n0, _ := strconv.Atoi(eval(t, ctx, chromedp.AttributeValue(chromedp.CSS("#chart-requests"), "data-samples")).Value)
	waitJS(t, ctx, "chart update", `Number(document.getElementById("chart-requests").dataset.samples) >= `+strconv.Itoa(n0+2))
	waitJS(t, ctx, "requests/s card", `parseFloat(document.getElementById("c-rps").textContent) > 0`)
	waitJS(t, ctx, "packets chart", `Number(document.getElementById("chart-packets").dataset.samples) > 0`)

	// the access log: sort by status, both ways
	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-tab="log"]`)), chromedp.WaitVisible(chromedp.CSS("#log")))
	waitJS(t, ctx, "log rows", `document.querySelectorAll("#log tbody tr td:nth-child(5)").length >= 8`)
	statuses := func() []int {
		t.Helper()
		s := eval(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#log tbody tr td:nth-child(5)")).map(td => td.textContent)`))
		var out []int
		for _, x := range s {
			n, _ := strconv.Atoi(x)
			out = append(out, n)
		}
		return out
	}
	// pause the live updates so that the table holds still while we read it
	run(t, ctx, chromedp.Click(chromedp.CSS("#log-pause")), chromedp.Click(chromedp.CSS(`th[data-key="status"]`)))
	// The log holds both 200s and 404s; a page shows 50 rows, so the first row is
	// what tells the direction.
	waitJS(t, ctx, "sorted descending", `document.querySelector('th[data-key="status"]').getAttribute("aria-sort") === "descending"`)
	desc := statuses()
	if !sort.SliceIsSorted(desc, func(i, j int) bool { return desc[i] > desc[j] }) || desc[0] != 404 {
		t.Fatalf("not sorted by status, descending: %v", desc)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`th[data-key="status"]`)))
	waitJS(t, ctx, "sorted ascending", `document.querySelector('th[data-key="status"]').getAttribute("aria-sort") === "ascending"`)
	asc := statuses()
	if !sort.IntsAreSorted(asc) || asc[0] != 200 {
		t.Fatalf("not sorted ascending: %v", asc)
	}

	// the telescope tab lists the source of the .env probes, and names what a dark
	// port was sent: an RDP connection request with its mstshash cookie
	dc, err := net.Dial("tcp", g.darkAddr())
	if err != nil {
		t.Fatal(err)
	}
	rdp := "\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: mstshash=eltons\r\n\x01\x00\x08\x00\x03\x00\x00\x00"
	dc.Write([]byte(rdp))
	dc.Close()
	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-tab="telescope"]`)))
	waitJS(t, ctx, "dark-port payload", `(r => r && r.textContent.includes("rdp-cookie") && r.textContent.includes("mstshash=eltons"))(document.querySelector("#t-dark tbody tr"))`)
	waitJS(t, ctx, "telescope sources", `document.querySelector("#t-sources tbody").textContent.includes("127.0.0.1")`)
	waitJS(t, ctx, "attack alert", `document.getElementById("alerts").textContent.includes("exploit attempts")`)

	// dark mode switch
	run(t, ctx, chromedp.Click(chromedp.CSS("#theme")))
	theme := eval(t, ctx, chromedp.Evaluate[string](`document.documentElement.dataset.theme`))
	run(t, ctx, chromedp.Click(chromedp.CSS("#theme")))
	theme2 := eval(t, ctx, chromedp.Evaluate[string](`document.documentElement.dataset.theme`))
	if theme == theme2 || (theme != "dark" && theme2 != "dark") {
		t.Fatalf("theme switch: %q then %q", theme, theme2)
	}
}

func TestBrowserPhoneLayout(t *testing.T) {
	ctx := browser(t)
	g := startGantry(t, setup{})
	run(t, ctx,
		chromedp.EmulateViewport(375, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(g.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS("#chart-requests canvas")),
	)
	scrollW := eval(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	clientW := eval(t, ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
	// wide tables scroll inside their box; the page itself does not scroll sideways
	if scrollW > clientW+1 {
		t.Fatalf("page is %dpx wide on a %dpx phone screen", scrollW, clientW)
	}
}

// TestBrowserBansPanel: the telescope tab lists a ban with its rule and the
// request that decided it (shown as text, never as markup), and its unban
// button lifts the ban.
func TestBrowserBansPanel(t *testing.T) {
	ctx := browser(t)
	g := startGantry(t, setup{bans: true})
	src := netip.MustParseAddr("203.0.113.9")
	g.bans.Offense(src, ban.Exploit, `env-file: GET /.env?<img src=x id=injected>`)
	if !g.bans.Banned(src) {
		t.Fatal("not banned")
	}
	run(t, ctx, chromedp.Navigate(g.admin+"/"), chromedp.WaitVisible(chromedp.CSS("#chart-requests canvas")),
		chromedp.Click(chromedp.CSS(`button[data-tab="telescope"]`)))
	waitJS(t, ctx, "ban row", `document.querySelector("#bans tbody").textContent.includes("203.0.113.9/32")`)
	cells := eval(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#bans tbody tr:first-child td")).map(td => td.textContent)`))
	if len(cells) < 3 || cells[1] != "exploit" || cells[2] != "env-file: GET /.env?<img src=x id=injected>" {
		t.Fatalf("ban row %q", cells)
	}
	if eval(t, ctx, chromedp.Evaluate[bool](`document.getElementById("injected") !== null`)) {
		t.Fatal("the sample became markup")
	}
	clickJS(t, ctx, `#bans button[data-source="203.0.113.9/32"]`)
	waitJS(t, ctx, "ban gone", `document.querySelector("#bans tbody").textContent.includes("no source banned") && document.getElementById("b-result").textContent.includes("unbanned")`)
	if g.bans.Banned(src) {
		t.Fatal("still banned after the unban button")
	}
}
