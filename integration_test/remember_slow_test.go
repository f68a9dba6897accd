package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// TestRememberCookieEndsWithTheSessionAfterASlowResponse: a persistent
// cookie's Max-Age counts from when the browser gets it, the response,
// and must end by the session's absolute deadline. It was the time left
// when the request began, so a remembered login, renewal or remember-me
// answered minutes later (a slow upload, a slow app) handed out a cookie
// that outlived its session by as long as the request took.
func TestRememberCookieEndsWithTheSessionAfterASlowResponse(t *testing.T) {
	const took = 10 * time.Minute
	cases := []struct {
		name     string
		before   []string // commands of an earlier request, nil: none
		commands []string // of the slow request
	}{
		{"a remembered login", nil, []string{"X-Session-Set-User: alice", "X-Session-Remember: true"}},
		{"remember me on a session", []string{"X-Session-Set-User: alice"}, []string{"X-Session-Remember: true"}},
		{"a renewal of a remembered session", []string{"X-Session-Set-User: alice", "X-Session-Remember: true"}, []string{"X-Session-Renew: true"}},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s, g := gatedSite(t, newSite)
				v := s.visitor()
				if tc.before != nil {
					v.get("/login", tc.before...)
				}
				f := v.start(g, "slow", tc.commands...)
				clock.Advance(took)
				res := f.finish(t)
				got := clock.Now()
				c := sidCookie(res)
				if c == nil || c.MaxAge <= 0 {
					t.Fatalf("no persistent cookie: %v", res.Header.Values("Set-Cookie"))
				}
				var rec apiSession
				sessionAPI(t, http.MethodGet, "/session/sessions/"+session.HashID(c.Value).String(), "").decode(t, http.StatusOK, &rec)
				left := rec.AbsoluteDeadline.Sub(got)
				if maxAge := time.Duration(c.MaxAge) * time.Second; maxAge > left || maxAge < left-2*time.Second {
					t.Fatalf("the cookie lasts %v from the response, the session %v", maxAge, left)
				}
			})
		}
	})
}
