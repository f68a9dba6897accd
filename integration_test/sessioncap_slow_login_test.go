package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestCapOfASlowLogin: max_sessions_per_identity judges which of the
// user's sessions a login ends when the login is committed, which may be
// long after the request began (an app that waits on a slow identity
// provider). A session seen while that login's app worked was seen since
// the login began: README says such a login never ends it, and two logins
// at once never end each other's sessions. Yet the cap took any session
// seen more than a minute after the login's start for one seen before the
// clock stepped back, the least recently seen of all, and ended it first:
// the user's other login made meanwhile (left with none of its own), or
// the device in use instead of the one idle for hours.
func TestCapOfASlowLogin(t *testing.T) {
	const idle = 3 * time.Hour
	tests := []struct {
		name string
		cap  string
		// slow is how long the held login's app works.
		slow time.Duration
		// before makes the user's sessions before the slow login
		// begins; during runs while its app works, and returns the
		// sessions it made or used. want says which must stand after
		// the slow login commits, by name.
		before func(t *testing.T, s *site) map[string]*visitor
		during func(t *testing.T, s *site, v map[string]*visitor)
		want   map[string]bool
	}{
		{
			name: "another login meanwhile, cap 1, the app took 90s",
			cap:  "max_sessions_per_identity 1",
			slow: 90 * time.Second,
			during: func(t *testing.T, s *site, v map[string]*visitor) {
				v["other login"] = login(t, s, "alice")
			},
			want: map[string]bool{"other login": true, "slow login": true},
		},
		{
			name: "another login meanwhile, cap 1, the app took 10m",
			cap:  "max_sessions_per_identity 1",
			slow: 10 * time.Minute,
			during: func(t *testing.T, s *site, v map[string]*visitor) {
				v["other login"] = login(t, s, "alice")
			},
			want: map[string]bool{"other login": true, "slow login": true},
		},
		{
			name: "another login meanwhile, cap 1, the app took 30s",
			cap:  "max_sessions_per_identity 1",
			slow: 30 * time.Second,
			during: func(t *testing.T, s *site, v map[string]*visitor) {
				v["other login"] = login(t, s, "alice")
			},
			want: map[string]bool{"other login": true, "slow login": true},
		},
		{
			name: "a device in use meanwhile, cap 2: the idle one goes",
			cap:  "max_sessions_per_identity 2",
			slow: 90 * time.Second,
			before: func(t *testing.T, s *site) map[string]*visitor {
				idle := login(t, s, "alice")
				clock.Advance(time.Hour)
				inUse := login(t, s, "alice")
				clock.Advance(10 * time.Minute)
				return map[string]*visitor{"idle": idle, "in use": inUse}
			},
			during: func(t *testing.T, s *site, v map[string]*visitor) {
				expectUser(t, v["in use"], "alice") // touched now
			},
			want: map[string]bool{"idle": false, "in use": true, "slow login": true},
		},
		{
			name: "another login meanwhile, cap 2: the idle one goes",
			cap:  "max_sessions_per_identity 2",
			slow: 90 * time.Second,
			before: func(t *testing.T, s *site) map[string]*visitor {
				idle := login(t, s, "alice")
				clock.Advance(time.Hour)
				return map[string]*visitor{"idle": idle}
			},
			during: func(t *testing.T, s *site, v map[string]*visitor) {
				v["other login"] = login(t, s, "alice")
			},
			want: map[string]bool{"idle": false, "other login": true, "slow login": true},
		},
		{
			// Only the remembered session and the slow login are live
			// when it is committed: the user is within the cap. Counted
			// live as of the login's start, the other one made the
			// user one over, and the least recently seen live session,
			// the remembered one, was ended.
			name: "one that expired while the app worked does not count, cap 2",
			cap:  "max_sessions_per_identity 2",
			slow: 2 * time.Minute,
			before: func(t *testing.T, s *site) map[string]*visitor {
				remembered := s.visitor()
				expectStatus(t, remembered.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true"), http.StatusOK)
				clock.Advance(2 * time.Hour)
				expiring := login(t, s, "alice")
				// A minute before the idle deadline of expiring: the
				// remembered one is past idle_timeout by then, but
				// within its own.
				clock.Advance(idle - time.Minute)
				return map[string]*visitor{"remembered": remembered, "expiring": expiring}
			},
			during: func(t *testing.T, s *site, v map[string]*visitor) {},
			want:   map[string]bool{"remembered": true, "expiring": false, "slow login": true},
		},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site {
					return newSite(t, tc.cap+"\n\t\tidle_timeout "+idle.String())
				})
				v := map[string]*visitor{}
				if tc.before != nil {
					v = tc.before(t, s)
				}
				slow := s.visitor()
				held := slow.start(g, "slow login", "X-Session-Set-User: alice")
				clock.Advance(tc.slow)
				tc.during(t, s, v)
				res := held.finish(t)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("the slow login got %d, want 200", res.StatusCode)
				}
				c := sidCookie(res)
				if c == nil || c.MaxAge < 0 {
					t.Fatal("the slow login issued no session")
				}
				slow.sid = c.Value
				v["slow login"] = slow
				for name, live := range tc.want {
					got := v[name].get("/whoami").session()["X-Session-User"]
					if live && got != "alice" {
						t.Errorf("%s: the session was ended by the slow login's cap (the app sees %q), want it to stand", name, got)
					}
					if !live && got != "" {
						t.Errorf("%s: the session stands (the app sees %q), want it ended", name, got)
					}
				}
			})
		}
	})
}
