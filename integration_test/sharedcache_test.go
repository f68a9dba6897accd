package integration_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSharedCachesKeptOffSessionPages: an app written before logins marks
// its pages cacheable by everyone; once the handler forwards a session to
// it, the page is the user's, and a CDN or shared cache in front of Caddy
// must not store it for the next user. The user's own browser keeps what
// the app allowed; anonymous pages keep the app's caching; shared_cache
// allow leaves it to an operator whose CDN keys on the cookie.
func TestSharedCachesKeptOffSessionPages(t *testing.T) {
	type row struct {
		name     string
		loggedIn bool
		commands []string
		// what the client gets: Cache-Control and Vary, each line joined
		// with ", "; whether the CDN fields are kept
		cc, vary string
		cdnKept  bool
	}
	cdn := []string{"CDN-Cache-Control", "Surrogate-Control", "Cloudflare-CDN-Cache-Control", "X-Accel-Expires"}
	run := func(t *testing.T, s *site, rows []row) {
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				v := s.visitor()
				if tc.loggedIn {
					v = login(t, s, "alice")
				}
				var orders []string
				for _, c := range tc.commands {
					if status, ok := strings.CutPrefix(c, "Test-Status: "); ok {
						orders = append(orders, "Test-Status", status)
					} else {
						orders = append(orders, "Test-Header", c)
					}
				}
				for _, name := range cdn {
					orders = append(orders, "Test-Header", name+": public, max-age=600")
				}
				want := http.StatusOK
				if slices.Contains(tc.commands, "Test-Status: 304") {
					want = http.StatusNotModified
				}
				r := v.do(http.MethodGet, "/", orders...)
				if r.StatusCode != want {
					t.Fatalf("status %d, want %d", r.StatusCode, want)
				}
				if got := strings.Join(r.Header.Values("Cache-Control"), ", "); got != tc.cc {
					t.Errorf("Cache-Control %q, want %q", got, tc.cc)
				}
				if got := strings.Join(r.Header.Values("Vary"), ", "); got != tc.vary {
					t.Errorf("Vary %q, want %q", got, tc.vary)
				}
				for _, name := range cdn {
					if kept := r.Header.Get(name) != ""; kept != tc.cdnKept {
						t.Errorf("%s: %q, want it kept: %v", name, r.Header.Get(name), tc.cdnKept)
					}
				}
			})
		}
	}
	t.Run("default", func(t *testing.T) {
		s, _ := newHostileSite(t, "")
		run(t, s, []row{
			{"a page the app marks public", true, []string{"Cache-Control: public, max-age=600, s-maxage=3600"}, "private, max-age=600", "Cookie", false},
			{"a page with no Cache-Control", true, nil, "private", "Cookie", false},
			{"a page with several Cache-Control lines and a Vary", true,
				[]string{"Cache-Control: public", "Cache-Control: max-age=60", "Vary: Accept-Encoding"}, "private, max-age=60", "Accept-Encoding, Cookie", false},
			{"a page that varies on the cookie already", true, []string{"Cache-Control: max-age=60", "Vary: cookie"}, "private, max-age=60", "cookie", false},
			{"a page the app marks private", true, []string{"Cache-Control: private, max-age=60"}, "private, max-age=60", "", false},
			{"a page private only of some fields", true, []string{`Cache-Control: private="Set-Cookie", max-age=60`}, "private, max-age=60", "Cookie", false},
			{"a page with the app's no-store", true, []string{"Cache-Control: no-store"}, "no-store", "", false},
			{"a 304 to a revalidation", true, []string{"Cache-Control: public, max-age=600", "Test-Status: 304"}, "private, max-age=600", "Cookie", false},
			{"a write that keeps the ID", true, []string{"X-Session-Set-Cart: pear", "Cache-Control: public, max-age=600"}, "private, max-age=600", "Cookie", false},
			{"a logout", true, []string{"X-Session-Destroy: true", "Cache-Control: public, max-age=600"}, "no-store", "", false},
			{"a login", false, []string{"X-Session-Set-User: bob", "Cache-Control: public, max-age=600"}, "no-store", "", false},
			{"an anonymous page", false, []string{"Cache-Control: public, max-age=600"}, "public, max-age=600", "", true},
			{"an anonymous page with no Cache-Control", false, nil, "", "", true},
		})
	})
	t.Run("shared_cache allow", func(t *testing.T) {
		s, _ := newHostileSite(t, "shared_cache allow")
		run(t, s, []row{
			{"a page the app marks public", true, []string{"Cache-Control: public, max-age=600, s-maxage=3600"}, "public, max-age=600, s-maxage=3600", "", true},
			{"a page with no Cache-Control", true, nil, "", "", true},
			{"a login", false, []string{"X-Session-Set-User: bob", "Cache-Control: public, max-age=600"}, "no-store", "", false},
			{"an anonymous page", false, []string{"Cache-Control: public, max-age=600"}, "public, max-age=600", "", true},
		})
	})
}

// TestSharedCachesKeptOffSessionErrorPages: an error route that proxies
// to the app passes on the request as the session handler left it, so
// the app renders its error page (a 404 with the user's name in the menu)
// for the user, and CDNs keep 404s too. It is made private as the
// session's other pages are; an anonymous one, or one of a site with
// shared_cache allow, keeps the app's headers.
func TestSharedCachesKeptOffSessionErrorPages(t *testing.T) {
	for _, tc := range []struct {
		name, option string
		allowed      bool
	}{{"default", "", false}, {"shared_cache allow", "shared_cache allow", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSiteFrom(t, "store bolt "+filepath.Join(t.TempDir(), "sessions.db"), `
http://127.0.0.1:$PORT {
	session {
		$STORE
		`+tc.option+`
	}
	handle /missing {
		error 404
	}
	reverse_proxy $APP
	handle_errors {
		rewrite * /errpage
		reverse_proxy $APP
	}
}`)
			alice := s.visitor()
			expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			if alice.sid == "" {
				t.Fatal("the login issued no session")
			}
			// The app's error page, which it answers 404 as its own.
			orders := []string{"Test-Header", "Cache-Control: public, max-age=600", "Test-Header", "CDN-Cache-Control: max-age=600", "Test-Status", "404"}
			for _, v := range []struct {
				who     string
				visitor *visitor
				user    string
			}{{"alice", alice, "alice"}, {"anonymous", s.visitor(), ""}} {
				r := v.visitor.do(http.MethodGet, "/missing", orders...)
				expectStatus(t, r, http.StatusNotFound)
				if got := r.seen.Headers.Get("X-Session-User"); got != v.user {
					t.Fatalf("%s: the error route's app saw user %q, want %q", v.who, got, v.user)
				}
				private := v.user != "" && !tc.allowed
				cc, vary, cdn := "public, max-age=600", "", "max-age=600"
				if private {
					cc, vary, cdn = "private, max-age=600", "Cookie", ""
				}
				if got := strings.Join(r.Header.Values("Cache-Control"), ", "); got != cc {
					t.Errorf("%s: Cache-Control %q, want %q", v.who, got, cc)
				}
				if got := strings.Join(r.Header.Values("Vary"), ", "); got != vary {
					t.Errorf("%s: Vary %q, want %q", v.who, got, vary)
				}
				if got := r.Header.Get("CDN-Cache-Control"); got != cdn {
					t.Errorf("%s: CDN-Cache-Control %q, want %q", v.who, got, cdn)
				}
			}
		})
	}
}
