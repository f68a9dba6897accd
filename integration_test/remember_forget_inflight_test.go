package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestForgetInFlightAcrossTheNormalAbsoluteDeadline: a remembered session,
// created almost an hour ago (the normal absolute_timeout), gets an
// X-Session-Remember: false from a request that began before the hour was
// up and answers after it (a slow settings page). Back on the normal
// timeouts, the session has outlived them by the time the response is
// applied: it ends instead (README, "Remember me"), as a request in
// flight across the absolute deadline renews nothing and gets no cookie
// for an ID that opens nothing (SECURITY.md, "Idle and absolute
// timeouts"). Its cookie is expired, its other commands are dropped, and
// the end is told as an expiry, not as a renewal. Judged when the request
// began instead, the session was written under a new ID already past its
// absolute deadline: the browser got a cookie for an ID that opened
// nothing, and the events app heard session.renewed and
// session.remembered of a session that had ended. A forget applied
// before the hour is up still moves the session to a new ID.
func TestForgetInFlightAcrossTheNormalAbsoluteDeadline(t *testing.T) {
	cases := []struct {
		name string
		// remembered: the login ticks the box; otherwise another tab
		// remembers the session while the forget is in flight.
		remembered bool
		commands   []string
		// renewed: another tab renews the session while the forget is in
		// flight, so that the forget reaches it through a forward record.
		renewed bool
		// after: how long the forget is in flight, from 30s before the
		// normal absolute deadline.
		after time.Duration
		ends  bool
	}{
		{name: "forget", remembered: true, commands: []string{"X-Session-Remember: false"}, after: time.Minute, ends: true},
		{name: "forget with a key", remembered: true, commands: []string{"X-Session-Remember: false", "X-Session-Set-Theme: dark"}, after: time.Minute, ends: true},
		{name: "forget across a renewal", remembered: true, commands: []string{"X-Session-Remember: false"}, renewed: true, after: time.Minute, ends: true},
		{name: "forget across another tab's remember", commands: []string{"X-Session-Remember: false"}, after: time.Minute, ends: true},
		{name: "forget applied before the deadline", remembered: true, commands: []string{"X-Session-Remember: false"}, after: 20 * time.Second},
		{name: "forget with a key applied before the deadline", remembered: true, commands: []string{"X-Session-Remember: false", "X-Session-Set-Theme: dark"}, after: 20 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
				s, g := gatedSite(t, newSite)
				s.options = rememberOpts
				s.globals = sessionEvents
				s.load()
				v := s.visitor()
				login := []string{"X-Session-Set-User: alice"}
				if tc.remembered {
					login = append(login, "X-Session-Remember: true")
				}
				created := time.Now()
				expectStatus(t, v.get("/login", login...), http.StatusOK)
				// In use every 9 minutes: alive on the normal idle
				// timeout (10m) as on the remembered one.
				for range 6 {
					clock.Advance(9 * time.Minute)
					expectStatus(t, v.get("/"), http.StatusOK)
				}
				clock.Advance(5*time.Minute + 30*time.Second) // 30s before the normal absolute deadline
				loaded := v.clone()
				takeEvents()

				slow := v.start(g, "forget", tc.commands...)
				clock.Advance(5 * time.Second)
				switch {
				case tc.renewed:
					expectStatus(t, v.get("/settings", "X-Session-Renew: true"), http.StatusOK)
				case !tc.remembered:
					r := v.get("/settings", "X-Session-Remember: true")
					expectPersistentSince(t, r, loaded.sid, 6*time.Hour-(59*time.Minute+35*time.Second), created)
				}
				other := v.clone()
				takeEvents()
				clock.Advance(tc.after - 5*time.Second)
				res := slow.finish(t)
				expectStatus(t, &response{Response: res}, http.StatusOK)
				var names []string
				for _, e := range takeEvents() {
					name := e.name
					if data := e.data(t); e.name == "session.destroyed" {
						name = fmt.Sprintf("%s %v", e.name, data["cause"])
					} else if e.name == "session.remembered" {
						name = fmt.Sprintf("%s %v", e.name, data["remembered"])
					}
					names = append(names, name)
				}
				c := sidCookie(res)
				if tc.ends {
					if c == nil || c.MaxAge >= 0 {
						t.Fatalf("a forget applied after the normal absolute deadline: Set-Cookie %q, want the cookie expired", res.Header.Values("Set-Cookie"))
					}
					if got, want := strings.Join(names, ", "), "session.destroyed expired"; got != want {
						t.Fatalf("a forget applied after the normal absolute deadline: events %q, want %q", got, want)
					}
					expectSession(t, other.get("/"), anonymous)
					expectSession(t, loaded.get("/"), anonymous)
					if n := countSessions(t); n != 0 {
						t.Fatalf("%d sessions stored after the forget ended the only one, want none", n)
					}
					return
				}
				if c == nil || c.Value == loaded.sid || c.MaxAge != 0 {
					t.Fatalf("a forget applied before the normal absolute deadline: Set-Cookie %q, want a new ID in a browser-session cookie", res.Header.Values("Set-Cookie"))
				}
				if got, want := strings.Join(names, ", "), "session.renewed, session.remembered false"; got != want {
					t.Fatalf("a forget applied before the normal absolute deadline: events %q, want %q", got, want)
				}
				v.sid = c.Value
				want := map[string]string{"X-Session-User": "alice"}
				if len(tc.commands) > 1 {
					want["X-Session-Theme"] = "dark"
				}
				expectSession(t, v.get("/"), want)
				expectSession(t, loaded.get("/"), anonymous)
				// On the normal timeouts now: it ends at the hour.
				clock.Advance(20 * time.Second)
				expectSession(t, v.get("/"), anonymous)
			})
		})
	}
}
