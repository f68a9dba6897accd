package integration_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"

	"github.com/caddy-session/caddy-session/internal/browsertest"
)

// hit is one request the flow app got: its path, the Fetch Metadata and
// purpose the browser sent, and the session's user and flash notice.
type hit struct {
	method, path, mode, dest, purpose, user, notice string
}

// flowApp is the app of the browser flows: pages that log in, save a
// form with a flash notice (POST, 303, GET), show the session's user and
// notice, and load other pages ahead (speculation rules, link prefetch).
// It records every request it got.
type flowApp struct {
	mu   sync.Mutex
	hits []hit
	seen chan hit // each hit, as it comes
}

func newFlowApp() *flowApp { return &flowApp{seen: make(chan hit, 256)} }

func (a *flowApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := hit{r.Method, r.URL.Path, r.Header.Get("Sec-Fetch-Mode"), r.Header.Get("Sec-Fetch-Dest"), r.Header.Get("Sec-Purpose"),
		r.Header.Get("X-Session-User"), r.Header.Get("X-Session-Flash-Notice")}
	a.mu.Lock()
	a.hits = append(a.hits, h)
	a.mu.Unlock()
	select {
	case a.seen <- h:
	default:
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	show := fmt.Sprintf(`<p id="user">%s</p><p id="notice">%s</p>`, html.EscapeString(h.user), html.EscapeString(h.notice))
	switch r.URL.Path {
	case "/login":
		user := "alice"
		if as := r.URL.Query().Get("as"); as != "" {
			user = as
		}
		w.Header().Set("X-Session-Set-User", user)
		if r.URL.Query().Has("remember") {
			w.Header().Set("X-Session-Remember", "true")
		}
		fmt.Fprint(w, show)
	case "/logout":
		w.Header().Set("X-Session-Destroy", "true")
		fmt.Fprint(w, show)
	case "/save":
		w.Header().Set("X-Session-Flash-Notice", "Saved")
		w.Header().Set("Location", "/next")
		w.WriteHeader(http.StatusSeeOther)
	case "/cart":
		w.Header().Set("X-Session-Set-Cart", "apple")
		fmt.Fprint(w, show)
	case "/form":
		fmt.Fprintf(w, `<form method="post" action="/transfer"><input type="hidden" name="csrf_token" value="%s"><button id="go">send</button></form>`,
			html.EscapeString(r.Header.Get("X-Session-Meta-Csrf-Token")))
	case "/ahead":
		fmt.Fprint(w, show+r.URL.Query().Get("html"))
	default:
		w.Header().Set("Cache-Control", r.URL.Query().Get("cc"))
		fmt.Fprint(w, show)
	}
}

func (a *flowApp) got() []hit {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]hit(nil), a.hits...)
}

// newBrowserSite starts Caddy with the session handler (options) in front
// of app, and returns the site's origin.
func newBrowserSite(t *testing.T, app http.Handler, options string) string {
	t.Helper()
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: &upstream{srv}}
	s.tester.Client.Jar = nil
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://localhost:%d {
	session {
		store bolt %s
		%s
	}
	reverse_proxy %s
}
`, adminPort, s.port, freePort(t), s.port, filepath.Join(t.TempDir(), "s.db"), options, srv.Listener.Addr()))
	return fmt.Sprintf("http://localhost:%d", s.port)
}

func hitsString(hs []hit) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%+v\n", h)
	}
	return b.String()
}

// TestFlashAcrossLoadsAheadInABrowser: chromium's own loads ahead
// (speculation rules prefetch and prerender, link prefetch) and a
// script's fetch() that follows a form's redirect (POST, 303, GET) leave
// a flash value for the next page the user opens, which gets it once: a
// reload of that page does not.
func TestFlashAcrossLoadsAheadInABrowser(t *testing.T) {
	slow(t, "it starts a browser in another process")
	app := newFlowApp()
	origin := newBrowserSite(t, app, "")
	b := browsertest.Start(t)
	b.Navigate(origin + "/login")
	b.Navigate(origin + "/ahead")
	// The script saves: POST, 303, and fetch() follows to GET /next.
	status, err := chromedp.Run(b.Context(), chromedp.Evaluate[int](
		`fetch("/save", {method: "POST", redirect: "follow"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusOK {
		t.Fatalf("the script's save: %d, %v", status, err)
	}
	// Then the page asks the browser to load pages ahead.
	b.Do(chromedp.Evaluate[chromedp.Void](`
		const rules = document.createElement("script");
		rules.type = "speculationrules";
		rules.textContent = JSON.stringify({prerender: [{source: "list", urls: ["/prerendered"]}], prefetch: [{source: "list", urls: ["/prefetched"]}]});
		document.body.append(rules);
		const link = document.createElement("link");
		link.rel = "prefetch";
		link.href = "/linked";
		document.head.append(link);`))
	ahead := map[string]string{"/prerendered": "prefetch;prerender", "/prefetched": "prefetch", "/linked": "prefetch"}
	timeout := time.After(browsertest.Timeout)
	for loaded := map[string]bool{}; len(loaded) < len(ahead); {
		select {
		case h := <-app.seen:
			if _, ok := ahead[h.path]; ok {
				loaded[h.path] = true
			}
		case <-timeout:
			t.Fatalf("chromium did not load every page ahead:\n%s", hitsString(app.got()))
		}
	}
	for _, h := range app.got() {
		if h.notice != "" {
			t.Fatalf("%s (mode %s, purpose %q) took the flash value:\n%s", h.path, h.mode, h.purpose, hitsString(app.got()))
		}
		if want, ok := ahead[h.path]; ok && h.purpose != want {
			t.Fatalf("%s came with Sec-Purpose %q, want %q", h.path, h.purpose, want)
		}
	}
	// The page the user opens shows it, once.
	b.Navigate(origin + "/settings")
	if got := b.Text("#notice"); got != "Saved" {
		t.Fatalf("the next page shows notice %q, want Saved:\n%s", got, hitsString(app.got()))
	}
	b.Do(chromedp.Reload())
	if got := b.Text("#notice"); got != "" {
		t.Fatalf("the page reloaded shows notice %q again", got)
	}
}

// TestRememberMeAcrossABrowserRestart: a remembered session's cookie is
// kept on disk and the user is still logged in after chromium restarts
// with the same profile, also with a __Host- cookie on http://localhost
// (a secure context to chromium); a browser-session cookie is gone.
func TestRememberMeAcrossABrowserRestart(t *testing.T) {
	slow(t, "it starts a browser in another process")
	for _, tc := range []struct {
		name, options, login, after string
	}{
		{"remembered", "", "/login?remember", "alice"},
		{"remembered, __Host- cookie", "cookie __Host-sid {\n\t\t\tsecure always\n\t\t}", "/login?remember", "alice"},
		{"browser session", "", "/login", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := newBrowserSite(t, newFlowApp(), tc.options)
			profile := t.TempDir()
			b := browsertest.StartIn(t, profile)
			b.Navigate(origin + tc.login)
			b.Navigate(origin + "/page")
			if got := b.Text("#user"); got != "alice" {
				t.Fatalf("after the login the page shows user %q", got)
			}
			b.Close()
			b = browsertest.StartIn(t, profile)
			b.Navigate(origin + "/page")
			if got := b.Text("#user"); got != tc.after {
				t.Fatalf("after a restart the page shows user %q, want %q", got, tc.after)
			}
		})
	}
}

// TestCrossSiteLoginInABrowser: a page of another site that posts a login
// form to the site (login CSRF) reaches the app without the session
// cookie, which is SameSite=Lax, so the app sees an anonymous request:
// Lax withholds nothing from a forged login, and without csrf the
// browser is logged in as the attacker; csrf refuses it, and the user's
// own session stays.
func TestCrossSiteLoginInABrowser(t *testing.T) {
	slow(t, "it starts a browser in another process")
	for _, tc := range []struct {
		name, options string
		status        int
		after         string
	}{
		{"no csrf", "", http.StatusOK, "mallory"},
		{"csrf", "csrf", http.StatusForbidden, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newFlowApp()
			origin := newBrowserSite(t, app, tc.options)
			evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, `<form method="post" action="%s/login?as=mallory"><button id="go">win a prize</button></form>`, origin)
			}))
			t.Cleanup(evil.Close)
			b := browsertest.Start(t)
			b.Navigate(origin + "/login")
			b.Navigate(evil.URL) // 127.0.0.1: another site than localhost
			if status := b.Click("#go"); status != tc.status {
				t.Fatalf("the forged login got %d, want %d", status, tc.status)
			}
			forged := 0
			for _, h := range app.got() {
				if h.method == http.MethodPost {
					forged++
					if h.user != "" {
						t.Fatalf("the forged login reached the app with the session of %q, want without the Lax cookie", h.user)
					}
				}
			}
			if want := map[int]int{http.StatusOK: 1}[tc.status]; forged != want {
				t.Fatalf("the app got the forged login %d times, want %d:\n%s", forged, want, hitsString(app.got()))
			}
			b.Navigate(origin + "/page")
			if got := b.Text("#user"); got != tc.after {
				t.Fatalf("after the forged login the site shows user %q, want %q", got, tc.after)
			}
		})
	}
}

// TestCSRFTokenAcrossTabsInABrowser: two tabs of one session. A form
// rendered in tab B before tab A's login (a renewal: new ID, new token)
// is refused, and the app does not see it; one rendered after is
// accepted. After tab A's logout, B's form of the ended session reaches
// the app anonymous: a request without a session needs no token, and the
// app sees no user.
func TestCSRFTokenAcrossTabsInABrowser(t *testing.T) {
	slow(t, "it starts a browser in another process")
	app := newFlowApp()
	origin := newBrowserSite(t, app, "csrf {\n\t\t\ttoken\n\t\t}")
	a := browsertest.Start(t)
	b := a.NewTab()
	transfers := func() (users []string) {
		for _, h := range app.got() {
			if h.path == "/transfer" {
				users = append(users, h.user)
			}
		}
		return users
	}
	a.Navigate(origin + "/cart") // an anonymous session, with a token
	b.Navigate(origin + "/form")
	a.Navigate(origin + "/login")
	if status := b.Click("#go"); status != http.StatusForbidden {
		t.Fatalf("tab B's form of before the login got %d, want 403", status)
	}
	b.Navigate(origin + "/form")
	if status := b.Click("#go"); status != http.StatusOK || b.Text("#user") != "alice" {
		t.Fatalf("tab B's form of after the login got %d", status)
	}
	b.Navigate(origin + "/form")
	a.Navigate(origin + "/logout")
	if status := b.Click("#go"); status != http.StatusOK {
		t.Fatalf("tab B's form of before the logout got %d", status)
	}
	if got := fmt.Sprint(transfers()); got != "[alice ]" {
		t.Fatalf("the app got transfers of users %s, want [alice ]", got)
	}
}
