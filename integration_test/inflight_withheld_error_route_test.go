package integration_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// revokingApp is a slowApp that revokes alice while it works on a
// request once revoke is set.
type revokingApp struct {
	slowApp
	revoke atomic.Bool
}

func (a *revokingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	app := a.slowApp
	if a.revoke.Load() {
		app.revoke = "alice"
	}
	app.ServeHTTP(w, r)
}

// withheldErrorRoutes is a site whose errors an error route answers
// through an app ($SECOND), as a site that renders its error pages with
// its app does (the error route gets the request as the session handler
// left it), and shows the session's placeholders in a header. Caddy
// refuses /forbidden.
var withheldErrorRoutes = twiceConfig{"handle_errors proxies to the app", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	handle_errors {
		header Test-Placeholder "user={http.session.user} hash={http.session_hash}"
		reverse_proxy $SECOND
	}
	error /forbidden 403
	reverse_proxy $FIRST
}`}

// TestWithheldErrorRouteGetsNoSession: an answer withheld because
// its session ended while the app worked on it (an admin revoked the
// user) is a 403 that the site's error routes answer, here through the
// app. The app renders that page for a client whose session ended: it
// must get none of what the session handler forwarded (the session's
// keys, the signed token, the devices list, the CSRF token, the flash
// values), nor may the placeholders show the session, or the page shows
// the user's data to the device that was logged out. A refusal of
// another kind (Caddy's own 403 on a live session) still reaches the
// error route with the session, as the README says.
func TestWithheldErrorRouteGetsNoSession(t *testing.T) {
	rows := []struct {
		name, options string
		login         []string // the login's commands, beside X-Session-Set-User: alice
	}{
		{"the session's keys", "", []string{"X-Session-Set-Cart: apple"}},
		{"a remembered session", "", []string{"X-Session-Remember: true"}},
		{"a flash value", "", []string{"X-Session-Flash-Notice: welcome-alice"}},
		{"a signed token", "sign {\n\t\t\tsecret " + signSecret + "\n\t\t}", nil},
		{"the devices list", "devices /poll", nil},
		{"the csrf token", "csrf {\n\t\t\ttoken\n\t\t}", nil},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				first := &revokingApp{slowApp: slowApp{namedApp: namedApp{"First"}}}
				s := newTwiceSite(t, withheldErrorRoutes, store, "idle_timeout 2h\n\t\ttunnels 1h\n\t\t"+row.options, first, namedApp{"Second"})
				v := s.visitor()
				login := []string{"Test-First-Header", "X-Session-Set-User: alice"}
				login = append(login, prefixed("Test-First-Header", row.login)...)
				expectStatus(t, v.do(http.MethodGet, "/login", login...), http.StatusOK)
				if v.sid == "" {
					t.Fatal("the login set no cookie")
				}

				// Caddy's own 403 on a live session: the error route
				// renders it for alice.
				r := v.do(http.MethodGet, "/forbidden")
				if r.seen.Headers.Get("X-Session-User") != "alice" || !strings.Contains(r.Header.Get("Test-Placeholder"), "user=alice") {
					t.Fatalf("the error route of a live session's refusal did not get it: %q, placeholders %q", r.body, r.Header.Get("Test-Placeholder"))
				}

				sid := v.sid
				first.revoke.Store(true)
				r = v.do(http.MethodGet, "/poll", "Sec-Fetch-Mode", "navigate")
				for name := range r.seen.Headers {
					if strings.HasPrefix(strings.ToLower(name), "x-session-") {
						t.Errorf("the error route of a withheld answer got %s from the ended session: %q", name, r.seen.Headers.Values(name))
					}
				}
				if strings.Contains(string(r.body), "alice") {
					t.Errorf("the error page of a withheld answer holds the ended session's user: %q", r.body)
				}
				if got := r.Header.Get("Test-Placeholder"); strings.Contains(got, "alice") || strings.Contains(got, session.HashID(sid).Short()) {
					t.Errorf("the placeholders in the error route of a withheld answer show the ended session: %q", got)
				}
				expectNoCookie(t, r.Response, "the error page of a withheld answer")
				if r.seen.URI != "/poll" {
					t.Fatalf("the error route did not answer the withheld request: %q", r.body)
				}
			})
		}
	})
}
