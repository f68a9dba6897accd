package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestRememberInFlightAcrossAnotherRemember: two requests of one session
// answer X-Session-Remember with opposite values (a "keep me signed in"
// toggle clicked on and off, a settings form in two tabs). The one that
// answers last loaded the session before the first one changed its
// persistence: its answer asks for what the session was when it loaded,
// and for the opposite of what it is now. A rotation that keeps the user
// carries the commands of a request in flight into the successor
// (README, "Requests in flight"), so the last answer wins: the session
// ends with the persistence the last response asked for, under a new ID
// whose cookie says so, and the ID the other response gave opens nothing
// any more. Above all, an X-Session-Remember: false must not leave the
// persistent ID that another tab just wrote to disk opening a
// remembered session.
func TestRememberInFlightAcrossAnotherRemember(t *testing.T) {
	cases := []struct {
		name string
		// login is how the session starts; first, the remember command of
		// the request that answers first; last, the commands of the one
		// in flight, which answers after it.
		login       []string
		first, last []string
		// want is what the app sees of the session in the end.
		want       map[string]string
		persistent bool // the last response's cookie is persistent
	}{
		{
			name:  "forget in flight across remember",
			login: []string{"X-Session-Set-User: alice"},
			first: []string{"X-Session-Remember: true"},
			last:  []string{"X-Session-Remember: false"},
			want:  alicePlain,
		},
		{
			name:  "forget with a key in flight across remember",
			login: []string{"X-Session-Set-User: alice"},
			first: []string{"X-Session-Remember: true"},
			last:  []string{"X-Session-Remember: false", "X-Session-Set-Cart: pear"},
			want:  map[string]string{"X-Session-User": "alice", "X-Session-Cart": "pear"},
		},
		{
			name:       "remember in flight across forget",
			login:      []string{"X-Session-Set-User: alice", "X-Session-Remember: true"},
			first:      []string{"X-Session-Remember: false"},
			last:       []string{"X-Session-Remember: true"},
			want:       aliceRemembered,
			persistent: true,
		},
		{
			name:       "remember with a key in flight across forget",
			login:      []string{"X-Session-Set-User: alice", "X-Session-Remember: true"},
			first:      []string{"X-Session-Remember: false"},
			last:       []string{"X-Session-Remember: true", "X-Session-Set-Cart: pear"},
			want:       map[string]string{"X-Session-User": "alice", "X-Session-Cart": "pear", "X-Session-Meta-Remembered": "true"},
			persistent: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
				s, g := gatedSite(t, newSite)
				s.options = rememberOpts
				s.globals = sessionEvents
				s.load()
				v := s.visitor()
				created := time.Now()
				expectStatus(t, v.get("/login", tc.login...), http.StatusOK)
				loaded := v.clone()

				slow := v.start(g, "last", tc.last...)
				r := v.get("/settings", tc.first...)
				if r.sessionCookie() == nil {
					t.Fatalf("the first response changed the persistence: Set-Cookie %q, want a new ID", r.Header.Values("Set-Cookie"))
				}
				first := v.clone() // the ID the first response gave
				takeEvents()

				res := slow.finish(t)
				var names []string
				for _, e := range takeEvents() {
					names = append(names, e.name)
				}
				if got, want := strings.Join(names, ", "), "session.renewed, session.remembered"; got != want {
					t.Fatalf("the response that changed the persistence back: events %q, want %q", got, want)
				}
				last := &response{Response: res}
				c := sidCookie(res)
				if c == nil || c.MaxAge < 0 || c.Value == first.sid || c.Value == loaded.sid {
					t.Fatalf("the response that answered last asked for %v and got Set-Cookie %q: want a new ID with the persistence it asked for",
						tc.last, res.Header.Values("Set-Cookie"))
				}
				if tc.persistent {
					expectPersistentSince(t, last, first.sid, 6*time.Hour, created)
				} else {
					expectBrowserSession(t, last, first.sid)
				}
				v.sid = c.Value
				expectSession(t, v.get("/"), tc.want)
				expectSession(t, first.get("/"), anonymous)
				expectSession(t, loaded.get("/"), anonymous)
				if !tc.persistent {
					// Back on the normal timeouts: unused past the normal
					// idle timeout, it has ended.
					clock.Advance(15 * time.Minute)
					expectSession(t, v.get("/"), anonymous)
				}
			})
		})
	}
}

// TestRememberInFlightAcrossOtherRotations: an X-Session-Remember in flight
// that finds the session, moved on by another request, already as it
// asks, or another user's, changes nothing: no new ID, no cookie, and the
// session stays as the other request left it.
func TestRememberInFlightAcrossOtherRotations(t *testing.T) {
	cases := []struct {
		name         string
		login, first []string
		last         []string
		want         map[string]string // what the app sees under the first response's ID
		age          time.Duration     // how old the session is when the requests begin
	}{
		{
			name:  "forget in flight across a renewal",
			login: []string{"X-Session-Set-User: alice"},
			first: []string{"X-Session-Renew: true"},
			last:  []string{"X-Session-Remember: false"},
			want:  alicePlain,
		},
		{
			name:  "remember in flight across a renewal of a remembered session",
			login: []string{"X-Session-Set-User: alice", "X-Session-Remember: true"},
			first: []string{"X-Session-Renew: true"},
			last:  []string{"X-Session-Remember: true"},
			want:  aliceRemembered,
		},
		{
			name:  "forget in flight across a login as another user who is remembered",
			login: []string{"X-Session-Set-User: alice"},
			first: []string{"X-Session-Set-User: bob", "X-Session-Remember: true"},
			last:  []string{"X-Session-Remember: false"},
			want:  map[string]string{"X-Session-User": "bob", "X-Session-Meta-Remembered": "true"},
		},
		{
			// Past the normal absolute timeout, the forget ends the
			// session: the remember in flight must not bring it back.
			name:  "remember in flight across a forget that ended the session",
			login: []string{"X-Session-Set-User: alice", "X-Session-Remember: true"},
			first: []string{"X-Session-Remember: false"},
			last:  []string{"X-Session-Remember: true"},
			want:  anonymous,
			age:   70 * time.Minute,
		},
		{
			name:  "remember in flight across a logout",
			login: []string{"X-Session-Set-User: alice"},
			first: []string{"X-Session-Destroy: true"},
			last:  []string{"X-Session-Remember: true"},
			want:  anonymous,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
				s, g := gatedSite(t, newSite)
				s.options = rememberOpts
				s.load()
				v := s.visitor()
				expectStatus(t, v.get("/login", tc.login...), http.StatusOK)
				loaded := v.clone()
				if tc.age > 0 {
					clock.Advance(tc.age / 2)
					expectStatus(t, v.get("/"), http.StatusOK) // in use: alive on the remember timeouts
					clock.Advance(tc.age - tc.age/2)
				}
				slow := v.start(g, "last", tc.last...)
				expectStatus(t, v.get("/settings", tc.first...), http.StatusOK)
				res := slow.finish(t)
				// A session that ended, or is another user's, withholds
				// the answer (README, "A response that is never flushed").
				status := http.StatusOK
				if _, same := tc.want["X-Session-User"]; !same || tc.want["X-Session-User"] != "alice" {
					status = http.StatusForbidden
				}
				expectStatus(t, &response{Response: res}, status)
				expectNoCookie(t, res, "an X-Session-Remember that found nothing to change")
				expectSession(t, v.get("/"), tc.want)
				expectSession(t, loaded.get("/"), anonymous)
			})
		})
	}
}
