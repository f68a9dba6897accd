package integration_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestClockStepBackTouchesTheSession: Caddy's wall clock steps back (an
// NTP correction of a clock that ran ahead) by more than a touch
// interval. Every session's last_seen is then in the future, and a use
// used to touch nothing until the clock caught up again: on Redis, whose
// TTL runs on Redis's own clock, a session in use for all that time lost
// its key once idle_timeout had passed since the last touch before the
// step (every signed-in user logged out by a step of idle_timeout), while
// its record said it was live an hour longer; on bolt, a session used
// once after the step lived idle_timeout plus the step after that use.
// A use after a step back is a touch at the request's time, and Redis
// keeps the key as long as the record says the session lives.
func TestClockStepBackTouchesTheSession(t *testing.T) {
	const step = time.Hour
	for _, name := range []string{"bolt", "redis"} {
		t.Run(name, func(t *testing.T) {
			var srv *redistest.Server
			store := ""
			if name == "redis" {
				srv = redistest.Start(t)
				store = "store redis " + srv.URL()
			}
			s := newSiteWith(t, store, "", "idle_timeout 30m")
			v := s.visitor()
			v.get("/login", "X-Session-Set-User: alice")

			clock.Advance(-step)
			t.Cleanup(func() { clock.Advance(step) })
			used := clock.Now()
			expectUser(t, v, "alice")
			after := clock.Now()

			var got apiSession
			sessionAPI(t, http.MethodGet, "/session/sessions/"+v.adminHash(), "").decode(t, http.StatusOK, &got)
			if got.IdleDeadline.Before(used.Add(30*time.Minute)) || got.IdleDeadline.After(after.Add(30*time.Minute)) {
				t.Fatalf("after a use at %v, once the clock stepped back by %v, the idle deadline is %v, want idle_timeout after the use",
					used, step, got.IdleDeadline)
			}
			if srv != nil {
				out, err := srv.Do("PTTL", "caddy-session:{"+v.adminHash()+"}")
				if err != nil {
					t.Fatal(err)
				}
				ms, err := strconv.ParseInt(strings.TrimPrefix(out, ":"), 10, 64)
				if err != nil {
					t.Fatalf("PTTL answered %q", out)
				}
				if left := got.IdleDeadline.Sub(clock.Now()); time.Duration(ms)*time.Millisecond < left-time.Second {
					t.Fatalf("Redis drops the session in %v, the record says it lives %v more", time.Duration(ms)*time.Millisecond, left)
				}
			}

			// Unused for idle_timeout after that use, it ends.
			clock.Advance(got.IdleDeadline.Sub(clock.Now()))
			expectUser(t, v, "")
		})
	}
}
