package integration_test

// Caddy's own directives read the session through its placeholders
// ({http.session.<key>}, {http.session_hash}): a `vars` matcher that
// guards an area, `request_header` that hands the user to an app that does
// not read the X-Session-* headers, `respond`, `log_append`. A part of a
// site may be guarded by a stricter session handler of its own, nested in
// the site's on the same store, cookie and realm (README, "Binding a
// session to its client"; SECURITY.md: a request from another client "is
// served as anonymous"). Where that handler serves a request as
// anonymous, its placeholders must say so: they showed the site handler's
// session all the same, so a stolen cookie used from another browser, or
// a session past the area's shorter idle_timeout, passed a `vars {http.session.role} admin`
// guard and reached the app as the user through `request_header`.

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// areaSite is a site whose /admin/ part has a stricter session handler
// (inner's settings) inside the site's (outer's), and reads the session there
// through placeholders only: a vars matcher, request_header, respond.
func areaSite(t *testing.T, store, outer, inner string) (*site, *hostileApp) {
	t.Helper()
	return newSiteFrom(t, store, `http://127.0.0.1:$PORT {
	session {
		$STORE
		`+outer+`
	}
	handle /admin/* {
		session {
			$STORE
			`+inner+`
		}
		@admin vars {http.session.role} admin
		route /admin/page {
			respond @admin "admin page of {http.session.user}"
			respond "denied" 403
		}
		request_header X-Remote-User "{http.session.user}"
		request_header X-Remote-Session "{http.session_hash}"
		request_header @admin X-Remote-Admin yes
		reverse_proxy $APP
	}
	reverse_proxy $APP
}
`)
}

// stricterArea are the ways the /admin/ handler of areaSite is stricter
// than the site's: each makes a request the site serves as the session's
// anonymous to the inner handler. The rows of stricterInner, and the
// inner handler's own on_store_error while the site's serves a copy.
var stricterArea = []struct {
	name, outer, inner string
	store              string // a store of the row's own, with a file made for it; "" for each store
	login              string
	before             func(t *testing.T) // before each request the inner handler must serve as anonymous
	userAgent          string
}{
	{name: "bound to the User-Agent", inner: "bind user_agent", login: "/admin/", userAgent: "curl/8.5.0"},
	{name: "a shorter idle timeout", inner: "idle_timeout 10m", login: "/", userAgent: firefox, before: func(t *testing.T) {
		clock.Advance(11 * time.Minute)
		t.Cleanup(func() { clock.Advance(-11 * time.Minute) })
	}},
	{name: "on_store_error anonymous beneath a stale copy", store: "store faulty",
		outer: "on_store_error stale 5m", inner: "on_store_error anonymous", login: "/", userAgent: firefox,
		before: func(t *testing.T) {
			failReads.Store(true)
			t.Cleanup(func() { failReads.Store(false) })
		}},
}

func TestStricterHandlerPlaceholders(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		for _, tc := range stricterArea {
			t.Run(tc.name, func(t *testing.T) {
				rowStore := store
				if tc.store != "" {
					if strings.HasPrefix(store, "store redis") {
						t.Skip("the row has a store of its own")
					}
					rowStore = tc.store + " " + filepath.Join(t.TempDir(), "sessions.db")
				}
				s, _ := areaSite(t, rowStore, tc.outer, tc.inner)
				v := s.visitor()
				login := v.do(http.MethodGet, tc.login, "User-Agent", firefox,
					"Test-Header", "X-Session-Set-User: alice", "Test-Header", "X-Session-Set-Role: admin")
				expectStatus(t, login, http.StatusOK)
				if v.sid == "" {
					t.Fatal("the login issued no session")
				}
				// The user's own browser: the placeholders show the session.
				own := v.do(http.MethodGet, "/admin/app", "User-Agent", firefox)
				expectStatus(t, own, http.StatusOK)
				hash := own.seen.Headers.Get("X-Remote-Session")
				if got := own.seen.Headers.Get("X-Remote-User"); got != "alice" || own.seen.Headers.Get("X-Remote-Admin") != "yes" || hash == "" {
					t.Fatalf("the user's own browser: the app got X-Remote-User %q, X-Remote-Admin %q, X-Remote-Session %q; want alice, yes and the session's hash",
						got, own.seen.Headers.Get("X-Remote-Admin"), hash)
				}
				if page := v.do(http.MethodGet, "/admin/page", "User-Agent", firefox); page.StatusCode != http.StatusOK || string(page.body) != "admin page of alice" {
					t.Fatalf("the user's own browser: /admin/page answered %d %q, want 200 and the admin page", page.StatusCode, page.body)
				}
				// The requests the inner handler serves as anonymous. The
				// site's handler around it serves them as the session's, and
				// touches it: a shorter idle_timeout of the inner handler
				// runs from the last request to the site, so the idle row
				// waits past it again before each.
				if tc.before != nil {
					tc.before(t)
				}
				r := v.do(http.MethodGet, "/admin/app", "User-Agent", tc.userAgent)
				expectStatus(t, r, http.StatusOK)
				if len(r.session()) != 0 {
					t.Fatalf("the inner handler forwarded the session: %v", r.session())
				}
				for _, name := range []string{"X-Remote-User", "X-Remote-Session", "X-Remote-Admin"} {
					got := r.seen.Headers.Get(name)
					if got == "alice" || got == "yes" || got == hash {
						t.Errorf("a request the inner handler serves as anonymous reached the app with %s: %q, from the session it refused", name, got)
					}
				}
				if tc.before != nil {
					tc.before(t)
				}
				page := v.do(http.MethodGet, "/admin/page", "User-Agent", tc.userAgent)
				if page.StatusCode != http.StatusForbidden || strings.Contains(string(page.body), "alice") {
					t.Errorf("a request the inner handler serves as anonymous passed the vars {http.session.role} guard: %d %q", page.StatusCode, page.body)
				}
			})
		}
	})
}
