package integration_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// TestRequestInFlightAcrossTheAbsoluteDeadline: a request that loaded the
// session before its absolute deadline and answers after it answers for a
// session that has expired meanwhile (README, "Requests in flight": its
// commands are dropped and it gets no cookie). Its own use of the session
// when it began pushes the idle deadline, never the absolute one: a
// renewal or a login must not be told of, nor hand the browser a cookie
// for an ID that opens nothing, nor a remembered one for a session no
// longer there.
func TestRequestInFlightAcrossTheAbsoluteDeadline(t *testing.T) {
	// No touch is due before the deadline, which is the absolute one's
	// (a request counts as a use when it began: an idle deadline passing
	// while it is in flight is moved back by its touch).
	const opts = `idle_timeout 1h
		absolute_timeout 1h`
	// The answer is withheld (README, "A response that is never
	// flushed"), but for a login, which the app answered knowing it
	// changed the session's user.
	for _, c := range []struct {
		name     string
		commands []string
		status   int
	}{
		{"a renewal", []string{"X-Session-Renew: true"}, http.StatusForbidden},
		{"a login as another user", []string{"X-Session-Set-User: bob"}, http.StatusOK},
		{"remember me", []string{"X-Session-Remember: true"}, http.StatusForbidden},
		{"a change", []string{"X-Session-Set-Cart: pear"}, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, opts) })
				s.globals = sessionEvents
				s.load()
				v := login(t, s, "alice")
				clock.Advance(59*time.Minute + 30*time.Second) // 30s before the absolute deadline
				takeEvents()
				slow := v.start(g, "slow", c.commands...)
				clock.Advance(time.Minute) // the session expires while the app runs
				res := slow.finish(t)
				expectStatus(t, &response{Response: res}, c.status)
				expectNoCookie(t, res, "a request in flight across the absolute deadline of its session")
				if got := takeEvents(); len(got) != 0 {
					t.Errorf("events of a session that expired while the request was in flight: %+v", got)
				}
				expectUser(t, v, "")
			})
		})
	}
}

// TestLogoutInFlightAcrossTheAbsoluteDeadline: a logout, or a logout
// everywhere, whose session reaches its absolute deadline while the app
// runs is dropped whole, as every command of such a request is (README,
// "Sessions": none outlives the absolute deadline, and a request that
// answers after it has its commands dropped and gets no cookie). Keys and
// flash values beside it start no session, and the user's other sessions,
// which have not expired, stay: X-Session-Destroy-All acts only while the
// request's session is still the user's, and an expired one is no one's.
func TestLogoutInFlightAcrossTheAbsoluteDeadline(t *testing.T) {
	const opts = `idle_timeout 1h
		absolute_timeout 1h`
	for _, c := range []struct {
		name     string
		commands []string
	}{
		{"a logout everywhere", []string{"X-Session-Destroy-All: true"}},
		{"a logout everywhere with a flash", []string{"X-Session-Destroy-All: true", "X-Session-Flash-Notice: bye"}},
		{"a logout everywhere with keys", []string{"X-Session-Destroy-All: true", "X-Session-Set-Theme: dark"}},
		{"a logout everywhere with keys, remembered", []string{"X-Session-Destroy-All: true", "X-Session-Set-Theme: dark", "X-Session-Remember: true"}},
		{"a logout with a flash", []string{"X-Session-Destroy: true", "X-Session-Flash-Notice: bye"}},
		{"a logout with keys", []string{"X-Session-Destroy: true", "X-Session-Set-Theme: dark"}},
		{"a revocation of the phone", []string{"X-Session-Revoke: <phone>"}},
		{"a revocation of the phone with keys", []string{"X-Session-Revoke: <phone>", "X-Session-Set-Theme: dark"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site {
					return newSite(t, opts+"\n\t\tremember {\n\t\t\tabsolute_timeout 30d\n\t\t}")
				})
				s.globals = sessionEvents
				s.load()
				laptop := login(t, s, "alice")
				clock.Advance(59*time.Minute + 30*time.Second) // 30s before the laptop's absolute deadline
				phone := login(t, s, "alice")
				takeEvents()
				commands := slices.Clone(c.commands)
				for i := range commands {
					commands[i] = strings.ReplaceAll(commands[i], "<phone>", session.HashID(phone.sid).Short())
				}
				slow := laptop.start(g, "slow", commands...)
				clock.Advance(time.Minute) // the laptop's session expires while the app runs
				res := slow.finish(t)
				// A logout is delivered, a revocation of another device
				// alone is withheld (README, "A response that is never
				// flushed").
				status := http.StatusOK
				if strings.HasPrefix(c.name, "a revocation") {
					status = http.StatusForbidden
				}
				expectStatus(t, &response{Response: res}, status)
				expectNoCookie(t, res, "a logout in flight across the absolute deadline of its session")
				if got := takeEvents(); len(got) != 0 {
					t.Errorf("events of a session that expired while the request was in flight: %+v", got)
				}
				expectUser(t, phone, "alice")
				if n := countSessions(t); n != 1 {
					t.Errorf("%d sessions stored, want the phone's alone", n)
				}
			})
		})
	}
}
