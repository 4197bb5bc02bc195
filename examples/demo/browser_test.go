package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"gantry/internal/cgi"
	"gantry/internal/config"
	"gantry/internal/fastcgi"
	"gantry/internal/peertest"
	"gantry/internal/server"
	"gantry/internal/wsgi"
)

// site runs gantry with the demo's own gantry.toml, as the README does, on a free
// port, without the admin listener and the dark port, with the data of the PHP,
// CGI and WSGI pieces in a temp dir.
func site(t *testing.T) string {
	t.Helper()
	srv := startSite(t, nil)
	return "http://" + srv.Addrs()[0].String()
}

// startSite is site, the config changed by edit (when not nil) before it starts.
func startSite(t *testing.T, edit func(*config.Config)) *server.Server {
	t.Helper()
	peertest.Binary(t, "php-cgi")
	peertest.Binary(t, "perl")
	peertest.Python(t)
	cfg, err := config.Load("gantry.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = []string{"127.0.0.1:0"}
	cfg.Server.AccessLog = "off"
	cfg.Admin.Listen = "off"
	cfg.Telescope.DarkPorts = nil
	data := t.TempDir()
	for i := range cfg.Sites {
		for j := range cfg.Sites[i].Routes {
			switch h := cfg.Sites[i].Routes[j].Handler.(type) {
			case *fastcgi.Options:
				h.Env = config.Strings{"DEMO_DATA_DIR": filepath.Join(data, "php")}
			case *cgi.Options:
				h.Env = config.Strings{"DEMO_DATA_DIR": filepath.Join(data, "cgi")}
			case *wsgi.Options:
				h.Env = config.Strings{"TODO_DB": filepath.Join(data, "todo.sqlite3")}
			}
		}
	}
	if edit != nil {
		edit(cfg)
	}
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// tab is one Chromium tab on the demo site. It fails the test on any console
// error or uncaught exception that a page writes, unless quiet() says the next
// ones are expected (a page that answers 404 on purpose).
type tab struct {
	t    *testing.T
	base string
	ctx  context.Context

	mu     sync.Mutex
	errs   []string
	quiet  bool
	shots  string // the directory for screenshots
	width  int64
	mobile bool
}

func browser(t *testing.T) *tab {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	return browserOn(t, site(t))
}

// browserOn is browser on the site at base, with extra Chromium options.
func browserOn(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	bin := peertest.Binary(t, "chromium", "chromium-browser")
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
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	shots := os.Getenv("GANTRY_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else {
		shots = filepath.Join(shots, "demo")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, base: base, ctx: ctx, shots: shots, width: 1100}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			tb.mu.Lock()
			if !tb.quiet {
				tb.errs = append(tb.errs, m.String()+" ("+m.URL+")")
			}
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errs {
			t.Errorf("console: %s", e)
		}
	})
	return tb
}

// run runs steps in the tab, failing t (a subtest's) on an error.
func (b *tab) run(t *testing.T, steps ...step) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// setQuiet turns the console check off (on) for pages that fail on purpose; the
// messages of a page can arrive after its load, so it is switched back only once
// a later page has loaded.
func (b *tab) setQuiet(q bool) step {
	return chromedp.Func(func(context.Context, *chromedp.Target) error {
		b.mu.Lock()
		b.quiet = q
		b.mu.Unlock()
		return nil
	})
}

// viewport makes the window a desktop (1100 px) or a phone (390 px).
func (b *tab) viewport(width int64) step {
	b.width = width
	if width >= 800 {
		return chromedp.EmulateViewport(width, 900)
	}
	return chromedp.EmulateViewport(width, 844, chromedp.EmulateMobile)
}

// load opens a page of the site and waits until its scripts have run.
func (b *tab) load(page string) step {
	return chromedp.Steps(chromedp.Navigate(b.base+page),
		wait(`document.readyState === "complete" && document.documentElement.classList.contains("js")`))
}

// shot saves a screenshot of the whole page as NAME-WIDTH.jpg for people to look at.
func (b *tab) shot(t *testing.T, name string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		jpg, err := chromedp.FullScreenshot(80)(ctx, tg)
		if err != nil {
			return err
		}
		file := filepath.Join(b.shots, fmt.Sprintf("%s-%d.jpg", name, b.width))
		return os.WriteFile(file, jpg, 0o644)
	})
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

// wait polls a JavaScript condition until it is true. Evaluation errors are
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

// hover moves the mouse over the middle of the element sel.
func hover(sel string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		xy, err := chromedp.Evaluate[[]float64](fmt.Sprintf(`(() => { const el = document.querySelector(%q);
			el.scrollIntoView({block: "center"}); const r = el.getBoundingClientRect();
			return [r.left + r.width / 2, r.top + r.height / 2]; })()`, sel))(ctx, tg)
		if err != nil {
			return fmt.Errorf("hover %s: %w", sel, err)
		}
		_, err = chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, xy[0], xy[1])(ctx, tg)
		return err
	})
}

const active = `document.activeElement.id || document.activeElement.textContent.trim()`

// overflow is the width by which the page is wider than the window: 0 when
// nothing makes it scroll sideways.
const overflow = `Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)`

// do runs JavaScript for its effect.
func do(js string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, tg)
		return err
	})
}
