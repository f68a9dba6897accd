package integration_test

import (
	"net/http"
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
	cdn := []string{"CDN-Cache-Control", "Surrogate-Control", "Cloudflare-CDN-Cache-Control"}
	run := func(t *testing.T, s *site, rows []row) {
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				v := s.visitor()
				if tc.loggedIn {
					v = login(t, s, "alice")
				}
				commands := slices.Clone(tc.commands)
				for _, name := range cdn {
					commands = append(commands, name+": public, max-age=600")
				}
				r := v.get("/", commands...)
				if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNotModified {
					t.Fatalf("status %d", r.StatusCode)
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
