// Package chromium starts the headless Chromium that browser tests drive with
// chromedp: one per test, with a profile of its own, gone at the test's end.
package chromium

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gantry/internal/peertest"
)

// Start starts Chromium (skipped with -short; missing, it fails under
// GANTRY_REQUIRE_PEERS) and returns a chromedp context for it; extra options
// (a window size, a flag) come after the defaults.
func Start(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	bin := peertest.Binary(t, "chromium", "chromium-browser", "google-chrome")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first action starts the browser, which lives as long as this context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Do runs browser actions, bounded so that a missing element fails the test
// instead of hanging it.
func Do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// TrustKeys is the option that makes Chromium accept a server whose chain holds
// one of these certificates' public keys, and no other untrusted server: the
// exact trust a test wants, where --ignore-certificate-errors would hide a wrong
// certificate. Chromium matches the chain the server sends (the leaf and any
// intermediates), not the root it would build to; the caller verifies that chain
// against the root itself.
func TrustKeys(certs ...*x509.Certificate) chromedp.ExecAllocatorOption {
	hashes := make([]string, len(certs))
	for i, c := range certs {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		hashes[i] = base64.StdEncoding.EncodeToString(sum[:])
	}
	return chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(hashes, ","))
}
