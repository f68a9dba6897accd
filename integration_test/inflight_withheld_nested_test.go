package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// slowApp is a namedApp that takes took, on the session clock, before it
// answers, as a long poll or a slow report does; if revoke names a user,
// an admin revokes that user's sessions meanwhile.
type slowApp struct {
	namedApp
	took   time.Duration
	revoke string
}

func (a slowApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	clock.Advance(a.took)
	if a.revoke != "" {
		res, err := http.Post(fmt.Sprintf("http://localhost:%d/session/revoke", adminPort), "application/json",
			strings.NewReader(fmt.Sprintf(`{"value": %q}`, a.revoke)))
		if err != nil || res.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("the revocation meanwhile failed: %v %v", res, err), http.StatusTeapot)
			return
		}
		res.Body.Close()
	}
	a.namedApp.ServeHTTP(w, r)
}

// TestWithheldNestedSlowAnswer: a request that passes two session
// handlers of one session (twiceConfigs), whose app took longer than a
// forward record lives, is judged as one handler judges it. An answer
// whose session stands (the app's own renewal, a change, a read) is
// delivered with the cookie of the session's new ID, if it has one: the
// inner handler's commit found the session live, and the outer handler
// does not read it again under the ID the response has just left, whose
// forward record ended before it was written (it did, and withheld the
// answer and the new cookie: the user was logged out by a slow
// renewal). One whose session an admin revoked meanwhile is withheld by
// both, renewal or not.
func TestWithheldNestedSlowAnswer(t *testing.T) {
	rows := []struct {
		name     string
		took     time.Duration
		revoked  bool
		commands []string
		cart     string // what the session holds after a delivered answer
		rotates  bool
	}{
		{"a renewal that took 3 minutes", 3 * time.Minute, false, []string{"X-Session-Renew: true"}, "apple", true},
		{"a renewal with a change that took 3 minutes", 3 * time.Minute, false, []string{"X-Session-Renew: true", "X-Session-Set-Cart: pear"}, "pear", true},
		{"a renewal that took 2 seconds", 2 * time.Second, false, []string{"X-Session-Renew: true"}, "apple", true},
		{"a change that took 3 minutes", 3 * time.Minute, false, []string{"X-Session-Set-Cart: pear"}, "pear", false},
		{"a read that took 3 minutes", 3 * time.Minute, false, nil, "apple", false},
		{"a renewal of a session revoked meanwhile", 3 * time.Minute, true, []string{"X-Session-Renew: true"}, "", false},
		{"a change of a session revoked meanwhile", 2 * time.Second, true, []string{"X-Session-Set-Cart: pear"}, "", false},
		{"a read of a session revoked meanwhile", 0, true, nil, "", false},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range twiceConfigs {
			t.Run(c.name, func(t *testing.T) {
				for _, row := range rows {
					t.Run(row.name, func(t *testing.T) {
						second := slowApp{namedApp: namedApp{"Second"}, took: row.took}
						if row.revoked {
							second.revoke = "alice"
						}
						s := newTwiceSite(t, c, store, "idle_timeout 2h\n\t\tabsolute_timeout 3h\n\t\ttunnels 1h", namedApp{"First"}, second)
						v := s.visitor()
						expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice", "Test-First-Header", "X-Session-Set-Cart: apple"), http.StatusOK)
						before := v.sid
						if before == "" {
							t.Fatal("the login set no cookie")
						}
						r := v.do(http.MethodGet, twicePath, append([]string{"Test-First-Status", "401"}, prefixed("Test-Second-Header", row.commands)...)...)
						if row.revoked {
							withheld(t, r.Response, string(r.body))
							if got := peekSession(t, s, before); len(got) != 0 {
								t.Fatalf("the revoked session after a withheld answer is %v, want none", got)
							}
							return
						}
						if r.StatusCode != http.StatusOK || r.seen.Headers.Get("X-Session-User") != "alice" {
							t.Fatalf("got %d %q, want the app's answer to alice delivered: its session stood", r.StatusCode, r.body)
						}
						if rotated := v.sid != before; rotated != row.rotates {
							t.Fatalf("the session's ID changed: %v, want %v (Set-Cookie %q)", rotated, row.rotates, r.Header.Values("Set-Cookie"))
						}
						if got := peekSession(t, s, v.sid); got["user"] != "alice" || got["cart"] != row.cart {
							t.Fatalf("the session after the answer is %v, want alice's with the cart %q", got, row.cart)
						}
					})
				}
			})
		}
	})
}
