// Package browsertest drives a real browser in tests: Debian's chromium,
// headless, through chromedp. Where chromium is missing a test that needs
// it is skipped, saying how to install it, and fails when CI=true, as CI
// installs it (.ci/run).
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each step: a page that never loads fails the test rather
// than hang it.
const Timeout = 30 * time.Second

// Browser is a headless chromium with a profile of its own (no cookies),
// started for one test and closed at its end, and its one tab.
type Browser struct {
	t      testing.TB
	ctx    context.Context
	cancel func()
}

// Start starts chromium for the test. The browser uses no proxy, and no
// sandbox, which needs user namespaces that containers and CI machines
// often lack.
func Start(t testing.TB) *Browser {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn is Start with the profile in dir: a browser started again in
// the same dir after Close is the same browser restarted, with the
// cookies it kept on disk (persistent ones; a browser-session cookie is
// gone).
func StartIn(t testing.TB, dir string) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(dir),
		chromedp.Flag("no-proxy-server", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser, which lives as long as the
	// context of that run: the tab's own, not one with a timeout; a
	// browser that does not start in time is stopped all the same.
	watchdog := time.AfterFunc(Timeout, cancel)
	err := chromedp.Do(ctx)
	watchdog.Stop()
	if err != nil {
		t.Fatalf("browser: starting %s: %v", chromium(t), err)
	}
	return &Browser{t: t, ctx: ctx, cancel: func() { cancel(); cancelAlloc() }}
}

// Close quits the browser as a user does, so that it writes its cookies
// to the profile, and waits until it has exited.
func (b *Browser) Close() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- chromedp.Cancel(b.ctx) }()
	select {
	case err := <-done:
		if err != nil {
			b.t.Fatalf("browser: closing: %v", err)
		}
	case <-ctx.Done():
		b.t.Fatal("browser: closing: it did not exit in time")
	}
	b.cancel()
}

// chromium returns the path of the browser, or skips the test (fails it
// under CI=true) where there is none.
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing, and CI needs it: .ci/run installs it with apt-get install chromium")
	}
	t.Skip("chromium is missing; install it with apt-get install chromium to run the browser tests")
	return ""
}

// NewTab opens another tab of the same browser, which shares its cookies,
// and returns it; it closes at the end of the test.
func (b *Browser) NewTab() *Browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("browser: opening a tab: %v", err)
	}
	return &Browser{t: b.t, ctx: ctx, cancel: cancel}
}

// Context returns the tab's context, for chromedp actions this package
// has no helper for.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs steps in the tab, in order, within Timeout, and fails the test
// if one fails.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Navigate loads url in the tab and returns the status of its response.
func (b *Browser) Navigate(url string) int {
	b.t.Helper()
	return b.load("loading "+url, func(ctx context.Context) (*network.Response, error) {
		return chromedp.Run(ctx, chromedp.NavigateResponse(url))
	})
}

// Click clicks the element that the CSS selector finds, waits for the
// page that the click loads (a link followed, a form submitted), and
// returns the status of its response.
func (b *Browser) Click(selector string) int {
	b.t.Helper()
	return b.load("clicking "+selector, func(ctx context.Context) (*network.Response, error) {
		return chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(selector)))
	})
}

// load runs a navigation and returns the status of the document it
// loaded. Two loads end in chromedp without the document's response, and
// take its status from the tab's network events instead:
//   - a response that chromium shows as an error page of its own (an
//     error status with an empty body: ERR_HTTP_RESPONSE_CODE_FAILURE)
//     is a load error to chromedp;
//   - a load that chromedp saw end with no response of its own (it
//     returned none and no error, once in a run, in the tab that had
//     just prerendered pages): the test then waits, too, for the
//     document of that response (past a redirect, the one it leads to) to
//     be the tab's, loaded, so that what it reads next is the new page's.
func (b *Browser) load(what string, navigate func(context.Context) (*network.Response, error)) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	documents := make(chan *network.Response, 16)
	events := chromedp.Events(ctx, network.ResponseReceived) // subscribed from here on
	go func() {
		for ev, err := range events {
			if err != nil {
				return // the context ended
			}
			if ev.Type == network.ResourceTypeDocument {
				select {
				case documents <- ev.Response:
				default:
				}
			}
		}
	}()
	res, err := navigate(ctx)
	if err == nil && res != nil {
		return int(res.Status)
	}
	if _, ok := errors.AsType[*chromedp.LoadError](err); err != nil && !ok {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	for {
		select {
		case doc := <-documents:
			if err == nil && redirect(doc.Status) {
				continue // the document is the one it leads to
			}
			if err == nil {
				b.waitLoaded(ctx, what, doc.URL)
			}
			return int(doc.Status)
		case <-ctx.Done():
			b.t.Fatalf("browser: %s: %v, and no response came", what, err)
			return 0
		}
	}
}

// redirect reports whether a document's status sends the tab on to
// another document.
func redirect(status int64) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// waitLoaded waits until the tab shows the document of url, loaded.
func (b *Browser) waitLoaded(ctx context.Context, what, url string) {
	b.t.Helper()
	js, _ := json.Marshal(url)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`location.href === %s && document.readyState === "complete"`, js))); err != nil {
		b.t.Fatalf("browser: %s: the tab did not show %s loaded: %v", what, url, err)
	}
}

// Text returns the text of the element that the CSS selector finds.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Timeout)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		b.t.Fatalf("browser: reading %s: %v", selector, err)
	}
	return text
}
