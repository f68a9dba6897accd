package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestAdminShowsTheDeadlinesThatApply: a timeout shortened in the config
// ends existing sessions sooner than the deadlines stored with them, and
// the admin API, which already judges liveness by the shortened timeouts,
// shows the deadlines that now apply, not the stored ones it no longer
// keeps to: an operator reading idle_deadline must learn when the session
// really ends.
func TestAdminShowsTheDeadlinesThatApply(t *testing.T) {
	cases := []struct {
		name     string
		login    []string // commands of the login
		reloaded string   // the session options after the reload
		// idle and absolute are the deadlines that apply, from the
		// session's creation (the login) and last use (the use below).
		idle, absolute func(created, lastSeen time.Time) time.Time
	}{
		{"idle shortened", nil, "idle_timeout 5m",
			func(_, seen time.Time) time.Time { return seen.Add(5 * time.Minute) },
			func(created, _ time.Time) time.Time { return created.Add(12 * time.Hour) }},
		{"absolute shortened below the idle deadline", nil, "idle_timeout 10m\n\t\tabsolute_timeout 15m",
			func(created, _ time.Time) time.Time { return created.Add(15 * time.Minute) },
			func(created, _ time.Time) time.Time { return created.Add(15 * time.Minute) }},
		{"remembered, remember timeouts shortened", []string{"X-Session-Remember: true"},
			"remember {\n\t\t\tidle_timeout 1h\n\t\t\tabsolute_timeout 48h\n\t\t}",
			func(_, seen time.Time) time.Time { return seen.Add(time.Hour) },
			func(created, _ time.Time) time.Time { return created.Add(48 * time.Hour) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, "")
			v := s.visitor()
			v.get("/login", append([]string{"X-Session-Set-User: alice"}, tc.login...)...)
			var before apiSession
			sessionAPI(t, http.MethodGet, "/session/sessions/"+v.adminHash(), "").decode(t, http.StatusOK, &before)
			clock.Advance(8 * time.Minute)
			v.get("/") // a use: the idle deadline moves on from here
			s.options = tc.reloaded
			s.load()

			var one apiSession
			sessionAPI(t, http.MethodGet, "/session/sessions/"+v.adminHash(), "").decode(t, http.StatusOK, &one)
			var page apiPage
			sessionAPI(t, http.MethodGet, "/session/sessions", "").decode(t, http.StatusOK, &page)
			if len(page.Sessions) != 1 {
				t.Fatalf("listed %d sessions, want 1", len(page.Sessions))
			}
			for name, got := range map[string]apiSession{"GET one": one, "the listing": page.Sessions[0]} {
				if !one.LastSeen.After(before.LastSeen) {
					t.Fatalf("%s: last_seen %v did not move with the use", name, one.LastSeen)
				}
				idle, absolute := tc.idle(got.Created, got.LastSeen), tc.absolute(got.Created, got.LastSeen)
				if !got.IdleDeadline.Equal(idle) || !got.AbsoluteDeadline.Equal(absolute) {
					t.Errorf("%s shows idle_deadline %v and absolute_deadline %v, want %v and %v (created %v, last seen %v)",
						name, got.IdleDeadline, got.AbsoluteDeadline, idle, absolute, got.Created, got.LastSeen)
				}
			}
			// The session ends at the deadline shown, not later.
			clock.Advance(one.IdleDeadline.Sub(clock.Now()))
			if r := v.get("/"); len(r.session()) != 0 {
				t.Fatalf("the session lives past the idle_deadline the admin API showed: %v", r.session())
			}
		})
	}
}
