package integration_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestOutageStricterAreaKeepsItsOwnDuration: a site serves its sessions
// from the copy for an hour while the store is down (on_store_error stale
// 1h), its /admin/ area for a minute only (stale 1m). README: stale serves
// "the copy of the session that this Caddy read or wrote within the
// duration", and the duration "is the longest that a revocation this
// Caddy did not see ... can be ignored". The area's handler took over the
// site's load, read from the copy by the site's hour, and served a copy
// ten minutes old. Each row reads the session into the copy, lets time
// pass, fails the faulty store's reads, and asks both.
func TestOutageStricterAreaKeepsItsOwnDuration(t *testing.T) {
	cases := []struct {
		name         string
		outer, inner string
		age          time.Duration
		site, area   int // statuses of / and /admin/app
	}{
		{"a copy within both", "stale 1h", "stale 1m", 30 * time.Second, http.StatusOK, http.StatusOK},
		{"a copy past the area's duration", "stale 1h", "stale 1m", 10 * time.Minute, http.StatusOK, http.StatusServiceUnavailable},
		{"a copy past both", "stale 1h", "stale 1m", 2 * time.Hour, http.StatusServiceUnavailable, http.StatusServiceUnavailable},
		{"the site the stricter, the area past it", "stale 1m", "stale 1h", 10 * time.Minute, http.StatusServiceUnavailable, http.StatusServiceUnavailable},
		{"the area under 503", "stale 1h", "503", 30 * time.Second, http.StatusOK, http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { failReads.Store(false) })
			s, _ := areaSite(t, "store faulty "+filepath.Join(t.TempDir(), "sessions.db"),
				"on_store_error "+tc.outer, "on_store_error "+tc.inner)
			v := s.visitor()
			expectStatus(t, v.do(http.MethodGet, "/", "Test-Header", "X-Session-Set-User: alice"), http.StatusOK)
			if v.sid == "" {
				t.Fatal("the login issued no session cookie")
			}
			expectSession(t, v.do(http.MethodGet, "/admin/app"), map[string]string{"X-Session-User": "alice"})
			clock.Advance(tc.age)
			t.Cleanup(func() { clock.Advance(-tc.age) })
			failReads.Store(true)
			for _, step := range []struct {
				path string
				want int
			}{{"/", tc.site}, {"/admin/app", tc.area}} {
				r := v.do(http.MethodGet, step.path)
				if r.StatusCode != step.want {
					t.Errorf("%s, a copy read %v ago, while the store is down: status %d, want %d; the app got %v",
						step.path, tc.age, r.StatusCode, step.want, r.session())
				}
				if step.want != http.StatusOK && len(r.session()) != 0 {
					t.Errorf("%s forwarded the session it refused: %v", step.path, r.session())
				}
			}
		})
	}
}
