package integration_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/browsertest"
)

// bankApp is the app of the browser test: a login, a page with a transfer
// form that carries the session's CSRF token (or, at /form?forged, a
// wrong one), the transfer, and an exempt hook that tells which
// Sec-Fetch-Site the browser sent. Every page is HTML.
type bankApp struct {
	transfers atomic.Int64
}

func (a *bankApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.URL.Path {
	case "/login":
		w.Header().Set("X-Session-Set-User", "alice")
		fmt.Fprint(w, `<p id="done">logged in</p>`)
	case "/form":
		token := r.Header.Get("X-Session-Meta-Csrf-Token")
		if _, forged := r.URL.Query()["forged"]; forged {
			token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}
		fmt.Fprintf(w, `<form method="post" action="/transfer"><input name="amount" value="10">`+
			`<input type="hidden" name="csrf_token" value="%s"><button id="go">send</button></form>`, html.EscapeString(token))
	case "/transfer":
		r.ParseForm()
		a.transfers.Add(1)
		fmt.Fprintf(w, `<p id="done">transferred %s for %s</p>`,
			html.EscapeString(r.PostForm.Get("amount")), html.EscapeString(r.Header.Get("X-Session-User")))
	case "/hooks/echo":
		fmt.Fprintf(w, `<p id="done">%s</p>`, html.EscapeString(r.Header.Get("Sec-Fetch-Site")))
	default:
		http.NotFound(w, r)
	}
}

// TestCSRFInABrowser: chromium submits a form of another site (a page on
// localhost posting to 127.0.0.1), which is refused, and the same form
// from the site's own page, which is accepted; with token, the form of
// the site's own page must also carry the session's token.
func TestCSRFInABrowser(t *testing.T) {
	slow(t, "it starts a browser in another process")
	for _, tc := range []struct {
		name, options string
		token         bool
	}{
		{"origin check", "csrf {\n\t\t\texempt @hooks\n\t\t}", false},
		{"origin check and token", "csrf {\n\t\t\texempt @hooks\n\t\t\ttoken\n\t\t}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := new(bankApp)
			srv := httptest.NewServer(app)
			t.Cleanup(srv.Close)
			s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: &upstream{srv}}
			s.tester.Client.Jar = nil
			other := freePort(t)
			bank := s.self()
			// The attacker's page: the bank's form, without a token it
			// cannot know, and a form to the exempt hook.
			evil := fmt.Sprintf(`<form id="steal" method="post" action="%[1]s/transfer"><input name="amount" value="1000">`+
				`<input type="hidden" name="csrf_token" value="guessed"><button id="go">win a prize</button></form>`+
				`<form method="post" action="%[1]s/hooks/echo"><button id="hook">hook</button></form>`, bank)
			s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://127.0.0.1:%d {
	@hooks path /hooks/*
	session {
		store bolt %s
		%s
	}
	reverse_proxy %s
}
http://localhost:%d {
	header Content-Type "text/html; charset=utf-8"
	respond %q
}
`, adminPort, s.port, freePort(t), s.port, filepath.Join(t.TempDir(), "s.db"), tc.options, srv.Listener.Addr(), other, evil))
			attacker := fmt.Sprintf("http://localhost:%d/", other)

			b := browsertest.Start(t)
			if status := b.Navigate(bank + "/login"); status != http.StatusOK || b.Text("#done") != "logged in" {
				t.Fatalf("login: %d", status)
			}

			// The browser says where the forms come from.
			b.Navigate(attacker)
			if status := b.Click("#hook"); status != http.StatusOK {
				t.Fatalf("the exempt hook answered %d", status)
			}
			if got := b.Text("#done"); got != "cross-site" {
				t.Fatalf("a form of localhost posting to 127.0.0.1 came with Sec-Fetch-Site %q, want cross-site", got)
			}

			// The attack.
			b.Navigate(attacker)
			if status := b.Click("#go"); status != http.StatusForbidden {
				t.Fatalf("the form of another site got %d, want 403", status)
			}
			if n := app.transfers.Load(); n != 0 {
				t.Fatalf("the app made %d transfers for another site's form", n)
			}

			// The site's own form.
			if tc.token {
				b.Navigate(bank + "/form?forged")
				if status := b.Click("#go"); status != http.StatusForbidden {
					t.Fatalf("the site's own form with a wrong token got %d, want 403", status)
				}
			}
			b.Navigate(bank + "/form")
			if status := b.Click("#go"); status != http.StatusOK {
				t.Fatalf("the site's own form got %d, want 200", status)
			}
			if got := b.Text("#done"); got != "transferred 10 for alice" {
				t.Fatalf("the site's own form led to %q", got)
			}
			if n := app.transfers.Load(); n != 1 {
				t.Fatalf("the app made %d transfers, want 1", n)
			}
		})
	}
}
