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
	"strings"
	"testing"
)

// areaSite is a site whose /admin/ part has a stricter session handler
// (inner's settings) inside the site's, and reads the session there
// through placeholders only: a vars matcher, request_header, respond.
func areaSite(t *testing.T, store, inner string) (*site, *hostileApp) {
	t.Helper()
	return newSiteFrom(t, store, `http://127.0.0.1:$PORT {
	session {
		$STORE
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

func TestAuditDirStricterHandlerPlaceholders(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		for _, tc := range stricterInner {
			t.Run(tc.name, func(t *testing.T) {
				s, _ := areaSite(t, store, tc.inner)
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
				if tc.before != nil {
					tc.before(t)
				}
				// The request the inner handler serves as anonymous.
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
				page := v.do(http.MethodGet, "/admin/page", "User-Agent", tc.userAgent)
				if page.StatusCode != http.StatusForbidden || strings.Contains(string(page.body), "alice") {
					t.Errorf("a request the inner handler serves as anonymous passed the vars {http.session.role} guard: %d %q", page.StatusCode, page.body)
				}
			})
		}
	})
}
