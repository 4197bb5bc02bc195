package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/peertest"
	"gantry/internal/peertest/chromium"
)

// TestBrowserTrafficViews walks the overview's and the telescope's new views at
// a desktop's and a phone's size, in both themes: tiles with their 10 s mean,
// the routes table (sorted, with sparklines), the pools and the note on their
// spread, the top lists, the range picker, zoom by drag, the log-scale latency,
// time labels that do not overlap, a chart that says why it is empty, and the
// telescope's short list, thresholds and words; with no console error.
func TestBrowserTrafficViews(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and Python")
	}
	py := peertest.Python(t)
	app := t.TempDir()
	os.WriteFile(filepath.Join(app, "hello.py"), []byte(`def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from wsgi\n"]
`), 0o644)
	extra := fmt.Sprintf("\n[[site.route]]\npath = \"/app/\"\nwsgi = \"hello:application\"\nchdir = %q\npython = %q\nprocesses = 2\n"+
		"\n[[site.route]]\npath = \"/dead/\"\nproxy = \"http://%s\"\n", app, py, deadBackend(t))
	g := startGantry(t, setup{packets: &fakePackets{}, extra: extra, history: weekOfHistory(t)})
	bare := startGantry(t, setup{}) // no packet capture: its chart says why it is empty

	// fifteen unsolicited requests, more than the telescope's short list shows
	c := client()
	for i := range 15 {
		do(t, c, "GET", fmt.Sprintf("%s/.env?n=%d", g.web, i), nil, nil)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		paths := []string{"/index.html", "/nope", "/app/", "/dead/x"}
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
	})
	t.Cleanup(func() { close(stop); wg.Wait() })

	for _, vp := range []struct {
		name string
		w, h int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		for _, theme := range []string{"light", "dark"} {
			t.Run(vp.name+"/"+theme, func(t *testing.T) {
				ctx := chromium.Start(t, chromedp.Flag("disable-quic", true), chromedp.WindowSize(int(vp.w), int(vp.h)))
				errs := consoleErrors(t, ctx)
				var emulate chromedp.Action[chromedp.Void] = chromedp.EmulateViewport(vp.w, vp.h)
				if vp.w < 600 {
					emulate = chromedp.EmulateViewport(vp.w, vp.h, chromedp.EmulateScale(2), chromedp.EmulateMobile)
				}
				run(t, ctx, emulate, chromedp.Navigate(g.admin+"/"), chromedp.WaitVisible(chromedp.CSS("#chart-requests canvas")),
					chromedp.Evaluate[chromedp.Void](`localStorage.setItem("gantry-theme", "`+theme+`")`),
					chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#chart-requests canvas")))
				if got := eval(t, ctx, chromedp.Evaluate[string](`document.documentElement.dataset.theme`)); got != theme {
					t.Fatalf("theme %q, want %q", got, theme)
				}
				trafficChecks(t, ctx)
				telescopeChecks(t, ctx)

				run(t, ctx, chromedp.Navigate(bare.admin+"/"), chromedp.WaitVisible(chromedp.CSS("#chart-requests canvas")))
				waitJS(t, ctx, "the empty packet chart's reason",
					`(p => p && p.textContent.includes("packet capture is off: set [telescope] interface"))(document.querySelector("#chart-packets").parentNode.querySelector(".chart-off"))`)
				if eval(t, ctx, chromedp.Evaluate[bool](`document.querySelector("#chart-requests").parentNode.querySelector(".chart-off") !== null`)) {
					t.Error("the requests chart, which has a source, says it has none")
				}
				// a log scale over a gantry that has had no request: nothing to draw, no error
				run(t, ctx, chromedp.Click(chromedp.CSS("#lat-log")))
				waitJS(t, ctx, "log scale without data", `document.getElementById("chart-latency").dataset.log === "1"`)

				if scrollW, clientW := eval(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)),
					eval(t, ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`)); scrollW > clientW+1 {
					t.Errorf("page is %dpx wide on a %dpx screen", scrollW, clientW)
				}
				if e := errs(); len(e) > 0 {
					t.Errorf("console errors:\n%s", strings.Join(e, "\n"))
				}
			})
		}
	}
}

func trafficChecks(t *testing.T, ctx context.Context) {
	t.Helper()
	// tiles: the last second and the mean of the last ten
	waitJS(t, ctx, "requests/s tile with its 10 s mean",
		`parseFloat(document.getElementById("c-rps").textContent) > 0 && /^10 s avg [0-9.]+$/.test(document.getElementById("c-rps-avg").textContent)`)
	waitJS(t, ctx, "bytes tile", `/ B|kB/.test(document.getElementById("c-bytes").textContent) && document.getElementById("c-bytes-avg").textContent.startsWith("10 s avg")`)

	// routes: every route with a sparkline; sorted by the error rate, both ways
	waitJS(t, ctx, "routes with sparklines", `(rows => rows.length >= 3 && Array.from(rows).every(r => r.querySelector("svg.spark polyline").getAttribute("points").split(" ").length >= 2))(document.querySelectorAll("#routes tbody tr"))`)
	run(t, ctx, chromedp.Click(chromedp.CSS(`#routes th[data-key="error_rate"]`)))
	waitJS(t, ctx, "routes by error rate, descending", `document.querySelector('#routes th[data-key="error_rate"]').getAttribute("aria-sort") === "descending"`)
	if first := eval(t, ctx, chromedp.Evaluate[string](`document.querySelector("#routes tbody tr").dataset.route`)); first != "/dead/" {
		t.Errorf("the route with the most errors first: got %q", first)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`#routes th[data-key="error_rate"]`)))
	waitJS(t, ctx, "routes by error rate, ascending", `document.querySelector('#routes th[data-key="error_rate"]').getAttribute("aria-sort") === "ascending"`)
	if errCell := eval(t, ctx, chromedp.Evaluate[string](`document.querySelector("#routes tbody tr td:nth-child(4)").textContent`)); errCell != "0%" {
		t.Errorf("ascending, the first route's error rate is %q", errCell)
	}

	// pools: busy and idle workers, the requests of each, and why they differ
	waitJS(t, ctx, "pool summary", `(r => r && r.cells.length === 8 && r.cells[0].textContent === "default" && Number(r.cells[3].textContent) + Number(r.cells[4].textContent) === 2 && parseFloat(r.cells[6].textContent) > 0 && r.querySelectorAll(".bar").length === 2)(document.querySelector("#pool-summary tbody tr"))`)
	waitJS(t, ctx, "pool note", `!document.getElementById("pool-note").hidden && document.getElementById("pool-note").textContent.includes("no dead worker")`)

	// the last hour's top lists
	waitJS(t, ctx, "top lists", `document.querySelector("#top-404 tbody").textContent.includes("/nope") && document.querySelector("#top-clients tbody").textContent.includes("127.0.0.1") && document.querySelector("#top-urls tbody").textContent.includes("/index.html")`)

	// time labels never overlap: each pair of neighbours is further apart than
	// half their widths, in the axis' font
	waitJS(t, ctx, "time labels", `JSON.parse(document.getElementById("chart-requests").dataset.xlabels || "[]").length >= 2`)
	labelsApart(t, ctx, "5 min")

	// range picker: an hour, then back to five minutes
	run(t, ctx, chromedp.Click(chromedp.CSS(`#range button[data-range="1h"]`)))
	waitJS(t, ctx, "the 1 h range", `document.getElementById("charts").dataset.range === "1h" && document.querySelector('#range button[data-range="1h"]').getAttribute("aria-pressed") === "true" && Number(document.getElementById("chart-requests").dataset.samples) > 0`)
	labelsApart(t, ctx, "1 h")
	run(t, ctx, chromedp.Click(chromedp.CSS(`#range button[data-range="24h"]`)))
	waitJS(t, ctx, "the 24 h range", `document.getElementById("charts").dataset.range === "24h" && Number(document.getElementById("chart-requests").dataset.samples) >= 1400`)
	labelsApart(t, ctx, "24 h")
	run(t, ctx, chromedp.Click(chromedp.CSS(`#range button[data-range="7d"]`)))
	waitJS(t, ctx, "the 7 day range", `document.getElementById("charts").dataset.range === "7d" && Number(document.getElementById("chart-requests").dataset.samples) > 10000`)
	if labels := eval(t, ctx, chromedp.Evaluate[string](`document.getElementById("chart-requests").dataset.xlabels`)); !regexp.MustCompile(`[A-Z][a-z]{2}`).MatchString(labels) {
		t.Errorf("a week's time axis names no day: %s", labels)
	}
	labelsApart(t, ctx, "7 days")
	run(t, ctx, chromedp.Click(chromedp.CSS(`#range button[data-range="5m"]`)))
	waitJS(t, ctx, "the 5 min range", `document.getElementById("charts").dataset.range === "5m" && Number(document.getElementById("chart-requests").dataset.samples) > 2`)

	// zoom by dragging across a chart; reset
	rect := eval(t, ctx, chromedp.Evaluate[[]float64](`(r => [r.left, r.top, r.width, r.height])(document.querySelector("#chart-requests .u-over").getBoundingClientRect())`))
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector("#chart-requests").scrollIntoView({block: "center"})`))
	rect = eval(t, ctx, chromedp.Evaluate[[]float64](`(r => [r.left, r.top, r.width, r.height])(document.querySelector("#chart-requests .u-over").getBoundingClientRect())`))
	y := rect[1] + rect[3]/2
	run(t, ctx, chromedp.DragAndDropXY(rect[0]+rect[2]*0.2, y, rect[0]+rect[2]*0.7, y, 8))
	waitJS(t, ctx, "zoomed", `document.getElementById("charts").dataset.zoomed === "1" && !document.getElementById("zoom-reset").hidden`)
	run(t, ctx, chromedp.Click(chromedp.CSS("#zoom-reset")))
	waitJS(t, ctx, "zoom reset", `document.getElementById("charts").dataset.zoomed === "0" && document.getElementById("zoom-reset").hidden`)

	// latency on a log scale
	run(t, ctx, chromedp.Click(chromedp.CSS("#lat-log")))
	waitJS(t, ctx, "log-scale latency", `document.getElementById("chart-latency").dataset.log === "1" && document.querySelector("#chart-latency canvas") !== null`)
	run(t, ctx, chromedp.Click(chromedp.CSS("#lat-log")))
	waitJS(t, ctx, "linear latency", `document.getElementById("chart-latency").dataset.log === "0"`)
}

func telescopeChecks(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-tab="telescope"]`)))
	waitJS(t, ctx, "ten latest requests and a show-more button", `document.querySelectorAll("#t-recent tbody tr").length === 10 && !document.getElementById("t-recent-more").hidden`)
	run(t, ctx, chromedp.Click(chromedp.CSS("#t-recent-more")))
	waitJS(t, ctx, "all latest requests", `document.querySelectorAll("#t-recent tbody tr").length >= 15 && document.getElementById("t-recent-more").textContent === "show fewer"`)
	waitJS(t, ctx, "thresholds in words", `document.getElementById("t-thresholds").textContent.includes("A scan is one source probing at least 25 addresses or 15 ports")`)
	heads := eval(t, ctx, chromedp.Evaluate[string](`document.querySelector("#t-attacks thead").textContent`))
	for _, want := range []string{"packets/s seen: mean / peak minute", "est. packets/s Internet-wide: mean / peak minute"} {
		if !strings.Contains(heads, want) {
			t.Errorf("attack table lacks the heading %q: %s", want, heads)
		}
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`button[data-tab="overview"]`)))
}

// labelsApart fails when two neighbouring time labels of a chart overlap: they
// must be further apart than half their widths, in the axis' font.
func labelsApart(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	overlap := eval(t, ctx, chromedp.Evaluate[[]string](`(() => {
		const ctx = document.createElement("canvas").getContext("2d");
		ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif";
		const bad = [];
		document.querySelectorAll(".chart").forEach(c => {
			const ls = JSON.parse(c.dataset.xlabels || "[]");
			for (let i = 1; i < ls.length; i++) {
				const need = (ctx.measureText(ls[i-1][0]).width + ctx.measureText(ls[i][0]).width) / 2;
				if (ls[i][1] - ls[i-1][1] < need) bad.push(c.id + ": " + JSON.stringify(ls));
			}
		});
		return bad;
	})()`))
	if len(overlap) > 0 {
		t.Errorf("%s: overlapping time labels: %v", what, overlap)
	}

}

// weekOfHistory writes a history file holding the last seven days at one
// minute, as a gantry that ran that long leaves it.
func weekOfHistory(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dashboard-history")
	s, err := openStore(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	now := time.Now().UnixMilli() / 60000 * 60000
	var buf [recordSize]byte
	for i := int64(2); i < minSlots; i++ {
		p := histPoint{T: now - i*60000}
		p.V[fRPS], p.V[f2xx], p.V[fP50], p.V[fP99] = float64(10+i%60), float64(10+i%60), 1.5, 20
		encodePoint(buf[:], &p)
		if _, err := s.f.WriteAt(buf[:], s.min.base+int64(s.min.slot(p.T))*recordSize); err != nil {
			t.Fatal(err)
		}
	}
	return path
}
