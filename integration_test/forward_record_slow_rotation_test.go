package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestForwardRecordOfASlowRotation: the forward record a rotation leaves
// under the old ID leads on for two minutes from when the rotation was
// committed, not from when the rotating request began (README, "Requests
// in flight"). A renewal that took longer than that (a slow login POST, a
// slow app) left a forward record that was already over when it was
// written: another request of the old ID, which loaded the session while
// the renewal was still in flight and answers just after it, had its
// commands dropped and its answer withheld (a 403), as if the user had
// been logged out. Every command that rotates, on both stores.
func TestForwardRecordOfASlowRotation(t *testing.T) {
	rows := []struct {
		name    string
		options string
		login   []string // the session before; nil: an anonymous cart
		rotate  []string // the slow request's commands, which rotate
		user    string   // the user of the session the rotation leaves
		cart    string   // its cart after the other request answered
	}{
		{name: "login", login: nil, rotate: []string{"X-Session-Set-User: alice"}, user: "alice",
			cart: "apple"}, // the cart the other request set for no one is dropped: the session is alice's now
		{name: "renewal", login: []string{"X-Session-Set-User: alice"}, rotate: []string{"X-Session-Renew: true"}, user: "alice", cart: "pear"},
		{name: "privilege change", options: "renew_on user role", login: []string{"X-Session-Set-User: alice"},
			rotate: []string{"X-Session-Set-Role: admin"}, user: "alice", cart: "pear"},
		{name: "remember me", login: []string{"X-Session-Set-User: alice"}, rotate: []string{"X-Session-Remember: true"}, user: "alice", cart: "pear"},
		{name: "forget me", login: []string{"X-Session-Set-User: alice", "X-Session-Remember: true"},
			rotate: []string{"X-Session-Remember: false"}, user: "alice", cart: "pear"},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				options := "idle_timeout 2h\n\t\tabsolute_timeout 3h\n\t\t" + row.options
				s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSiteOn(t, store, options) })
				v := s.visitor()
				expectStatus(t, v.get("/login", append(row.login, "X-Session-Set-Cart: apple")...), http.StatusOK)
				if v.sid == "" {
					t.Fatal("the first request issued no session")
				}
				old := v.clone()

				// The rotating request loads the session, and its app takes
				// two and a half minutes before answering.
				rotating := v.start(g, "rotating", row.rotate...)
				clock.Advance(2*time.Minute + 30*time.Second)
				// Meanwhile another tab of the same device loads the
				// session, still under the old ID, and answers after the
				// rotation was committed.
				other := old.start(g, "other", "X-Session-Set-Cart: pear")
				clock.Advance(30 * time.Second)
				res := rotating.finish(t)
				expectStatus(t, &response{Response: res}, http.StatusOK)
				c := sidCookie(res)
				if c == nil || c.MaxAge < 0 || c.Value == old.sid {
					t.Fatalf("the rotating response got Set-Cookie %q, want a new ID", res.Header.Values("Set-Cookie"))
				}
				v.sid = c.Value

				res = other.finish(t)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("the other request of the old ID, answered a moment after the slow rotation, got %d, want the app's answer: the rotation was committed a moment ago, and its forward record must still lead on", res.StatusCode)
				}
				expectNoCookie(t, res, "a request in flight across a rotation (the browser holds the successor's cookie)")
				got := sessionWith(t, s, v.sid)
				if got["user"] != row.user || got["cart"] != row.cart {
					t.Fatalf("the session after both answered is %v, want user %q and cart %q", got, row.user, row.cart)
				}
			})
		}
	})
}
