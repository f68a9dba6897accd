package integration_test

import (
	"net/http"
	"path/filepath"
	"testing"
)

// TestOutageCommandsDuringAnOutageAreRefused: while the store is down, a
// request with a session cookie is served under on_store_error anonymous
// (the app sees no session) or stale (the app sees this Caddy's copy).
// README, "When the store is down": whatever the policy, "the response has
// commands" is a 503, and "A store failure is an error the client sees".
// A command the session served has nothing to do for (a logout of a
// session the app was not shown, a set of a value the copy already holds)
// was delivered as a 200 with nothing stored: the user was told they had
// logged out, kept the cookie, and the session opened again once the store
// was back. The outage is the faulty store's: every read and write fails
// from the moment the test says so.
func TestOutageCommandsDuringAnOutageAreRefused(t *testing.T) {
	commands := []struct {
		name, command string
	}{
		{"a logout", "X-Session-Destroy: true"},
		{"a logout everywhere", "X-Session-Destroy-All: true"},
		{"a renewal", "X-Session-Renew: true"},
		{"a delete of a key", "X-Session-Delete: cart"},
		{"a remember", "X-Session-Remember: true"},
		{"a forget", "X-Session-Remember: false"},
		{"a set of the value the session holds", "X-Session-Set-Cart: apple"},
		{"a login as the user the session holds", "X-Session-Set-User: alice"},
		{"a login as another user", "X-Session-Set-User: mallory"},
		{"a flash value", "X-Session-Flash-Notice: saved"},
		{"a revoke of another device", "X-Session-Revoke: 0123456789abcdef"},
	}
	for _, policy := range []string{"anonymous", "stale 5m"} {
		t.Run(policy, func(t *testing.T) {
			for _, tc := range commands {
				t.Run(tc.name, func(t *testing.T) {
					alice := outageSite(t, policy)
					r := alice.get("/account", tc.command)
					if r.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("%s while the store is down: status %d, want 503: the response was delivered as if it had been stored", tc.command, r.StatusCode)
					}
					if c := r.sessionCookie(); c != nil {
						t.Errorf("%s while the store is down set the session cookie: %v", tc.command, c)
					}
					// Nothing was stored, as the 503 said: once the store is
					// back, the session is as it was.
					failReads.Store(false)
					failWrites.Store(false)
					expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
				})
			}
			// A response that asks the store to write less is no command
			// for it: the page is served.
			t.Run("no touch", func(t *testing.T) {
				alice := outageSite(t, policy)
				expectStatus(t, alice.get("/poll", "X-Session-Touch: false"), http.StatusOK)
			})
		})
	}
}

// outageSite starts a site on a faulty store with on_store_error
// policy, logs alice in with a cart, has her session read once (into the
// copy, for stale), and makes every read and write of the store fail until
// the end of the test.
func outageSite(t *testing.T, policy string) *visitor {
	t.Helper()
	t.Cleanup(func() { failReads.Store(false); failWrites.Store(false) })
	s := newSiteWith(t, "store faulty "+filepath.Join(t.TempDir(), "sessions.db"), "", "on_store_error "+policy)
	alice := s.visitor()
	expectStatus(t, alice.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple"), http.StatusOK)
	if alice.sid == "" {
		t.Fatal("the login issued no session cookie")
	}
	expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
	failReads.Store(true)
	failWrites.Store(true)
	return alice
}
