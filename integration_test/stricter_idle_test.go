package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestStricterIdleTimeoutHoldsOnTheNextRequest: a part of a site whose
// session handler has a shorter idle_timeout than the site's turns away a
// session idle past it. The site's handler around it served that request
// as the session's, and touched it: the next request to the part, a
// reload, found the session just used and let it in. A request the inner
// handler turns away is no use of the session; a request the site serves
// is one, and lets the session into the part again, as the README says
// (idle time runs from the last use anywhere on the site).
func TestStricterIdleTimeoutHoldsOnTheNextRequest(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		s, _ := areaSite(t, store, "", "idle_timeout 10m")
		v := s.visitor()
		expectStatus(t, v.do(http.MethodGet, "/", "Test-Header", "X-Session-Set-User: alice"), http.StatusOK)
		if v.sid == "" {
			t.Fatal("the login issued no session")
		}
		clock.Advance(11 * time.Minute)
		t.Cleanup(func() { clock.Advance(-11 * time.Minute) })
		steps := []struct {
			path string
			user string // what the app gets in X-Session-User
		}{
			{"/admin/app", ""},      // idle past the area's timeout
			{"/admin/app", ""},      // reloaded: still idle, not touched by the first
			{"/", "alice"},          // the site: a use of the session, which touches it
			{"/admin/app", "alice"}, // used a moment ago
		}
		for i, step := range steps {
			r := v.do(http.MethodGet, step.path)
			expectStatus(t, r, http.StatusOK)
			if got := r.session()["X-Session-User"]; got != step.user {
				t.Fatalf("request %d, %s: the app got user %q, want %q", i+1, step.path, got, step.user)
			}
		}
	})
}
