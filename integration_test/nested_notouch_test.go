package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// A request that passes two session handlers of one session is a use of
// it only if both say so: a request that either handler's no_touch
// matches, or whose response says X-Session-Touch: false, leaves the idle
// deadline where it was. The inner handler commits first; if it touched
// the session, the outer handler's no_touch came too late, and if it did
// not, the outer one touched the session all the same, so that a polling
// endpoint under a nested handler kept an idle session alive.

// nestedConfig is c with outer and inner as the options of its handlers.
func nestedConfig(c twiceConfig, outer, inner string) twiceConfig {
	c.sites = strings.NewReplacer("$OUTER", outer, "$INNER", inner).Replace(c.sites)
	return c
}

// TestNestedNoTouchOfEitherHandler: a poll of /again/poll, which the
// no_touch of one of the two handlers names, after a login 4 minutes
// earlier: with idle_timeout 10m, the session ends 10 minutes after the
// login, not after the poll. A request that neither names is a use.
func TestNestedNoTouchOfEitherHandler(t *testing.T) {
	const (
		timeouts = "idle_timeout 10m\n\t\ttouch_interval 1m"
		noTouch  = timeouts + "\n\t\tno_touch /again/poll"
	)
	rows := []struct {
		name         string
		outer, inner string
		path         string
		// live: whether the session is still there 11 minutes after
		// the login, 7 after the request.
		live bool
	}{
		{"the inner handler's no_touch", timeouts, noTouch, "/again/poll", false},
		{"the outer handler's no_touch", noTouch, timeouts, "/again/poll", false},
		{"both handlers' no_touch", noTouch, noTouch, "/again/poll", false},
		{"a request no_touch does not name", noTouch, noTouch, "/again/page", true},
		{"no no_touch", timeouts, timeouts, "/again/poll", true},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range twiceConfigs {
			t.Run(c.name, func(t *testing.T) {
				for _, row := range rows {
					if strings.Contains(c.name, "named route") && row.outer != row.inner {
						continue // one handler: the same options both times
					}
					t.Run(row.name, func(t *testing.T) {
						s := newTwiceSite(t, nestedConfig(c, row.outer, row.inner), store, "", namedApp{"First"}, namedApp{"Second"})
						v := s.visitor()
						expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
						if v.sid == "" {
							t.Fatal("the login set no cookie")
						}
						clock.Advance(4 * time.Minute)
						r := v.do(http.MethodGet, row.path, "Test-First-Status", "401")
						expectStatus(t, r, http.StatusOK)
						if got := r.seen.Headers.Get("X-Session-User"); got != "alice" {
							t.Fatalf("the second app saw user %q, want alice", got)
						}
						clock.Advance(7 * time.Minute)
						want := map[string]string{}
						if row.live {
							want["user"] = "alice"
						}
						if got := peekSession(t, s, v.sid); !mapsEqual(got, want) {
							t.Fatalf("the session 11 minutes after the login, 7 after %s = %v, want %v", row.path, got, want)
						}
					})
				}
			})
		}
	})
}
