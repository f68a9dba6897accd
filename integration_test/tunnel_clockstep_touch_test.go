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

// TestTunnelTouchesItsSessionAfterAClockStepBack: an open tunnel is a use
// of its session, and after Caddy's wall clock stepped back by more than a
// minute a use touches the session at once, at the new time (README,
// "Sessions"). A request does (Timeouts.NeedsTouch); the tunnel's periodic
// check asked only whether touch_interval had passed since the session's
// last_seen, which the step put in the future, and touched nothing until
// the clock caught up: on Redis, whose TTL runs on its own clock, the
// session of a chat page left open was dropped idle_timeout after its
// last touch before the step, and its WebSocket cut, while the record
// said it lived on. Each row steps the clock back by its step, then moves
// it on by less than touch_interval, and waits for a check at that time.
func TestTunnelTouchesItsSessionAfterAClockStepBack(t *testing.T) {
	const idle = time.Hour
	for _, row := range []struct {
		name string
		back time.Duration
	}{
		{"a step back of idle_timeout", idle},
		{"a step back of two hours", 2 * time.Hour},
		{"a step back of two minutes", 2 * time.Minute},
	} {
		t.Run(row.name, func(t *testing.T) {
			for _, backend := range []string{"bolt", "redis"} {
				t.Run(backend, func(t *testing.T) {
					var srv *redistest.Server
					store := ""
					if backend == "redis" {
						srv = redistest.Start(t)
						store = "store redis " + srv.URL()
					}
					checks := tunnelChecks(t)
					s, _ := newTunnelSite(t, store, "idle_timeout 1h\n\t\ttouch_interval 1m\n\t\ttunnels 5ms")
					alice := login(t, s, "alice")
					ws := openTunnel(t, alice)

					// The checks run every 5ms beside the test: one may read
					// the clock between the two steps, or between the second
					// and from, and touch the session there. Any touch after
					// the step back is one at the new time, and none before
					// it is due (touch_interval has not passed since the
					// login): the idle deadline is bounded below by stepped,
					// the earliest time a check may read after the step.
					stepped := clock.Now().Add(-row.back)
					clock.Advance(-row.back)
					t.Cleanup(func() { clock.Advance(row.back) })
					clock.Advance(10 * time.Second)
					from := clock.Now()
					if c := checkedAt(t, checks, from); c.Closed {
						t.Fatal("the tunnel closed after the clock stepped back")
					}
					// The check at from, or a later one, stored its touch:
					// the next check, at a time after that, reads it.
					c := checkedAt(t, checks, clock.Now().Add(time.Nanosecond))
					var got apiSession
					sessionAPI(t, http.MethodGet, "/session/sessions/"+alice.adminHash(), "").decode(t, http.StatusOK, &got)
					if got.IdleDeadline.Before(stepped.Add(idle)) || got.IdleDeadline.After(c.Now.Add(idle)) {
						t.Fatalf("once the clock stepped back by %v, the open tunnel's checks from %v on left the idle deadline at %v (last seen %v), want idle_timeout after a check",
							row.back, stepped, got.IdleDeadline, got.LastSeen)
					}
					if srv != nil {
						out, err := srv.Do("PTTL", "caddy-session:{"+alice.adminHash()+"}")
						if err != nil {
							t.Fatal(err)
						}
						ms, err := strconv.ParseInt(strings.TrimPrefix(out, ":"), 10, 64)
						if err != nil {
							t.Fatalf("PTTL answered %q", out)
						}
						if left := got.IdleDeadline.Sub(clock.Now()); time.Duration(ms)*time.Millisecond < left-time.Second {
							t.Fatalf("Redis drops the session of the open tunnel in %v, the record says it lives %v more", time.Duration(ms)*time.Millisecond, left)
						}
					}
					ws.echoes()
				})
			}
		})
	}
}
