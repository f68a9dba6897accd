package integration_test

import (
	"net/http"
	"testing"
)

// TestSecurityBoundSessionStrangerChangesNothing: SECURITY.md, "Binding the
// session ID to other user properties": a request that presents a bound
// session from another client is served as anonymous, "counted in
// caddy_session_bind_mismatches_total, and cannot end, write to or rotate
// the session". checkBound tries a write, a logout and a logout
// everywhere; here every command that would rotate, persist, change or
// end the session, one row each, and the counter, which no test read.
func TestSecurityBoundSessionStrangerChangesNothing(t *testing.T) {
	const (
		firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
		curl    = "curl/8.5.0"
		metric  = `caddy_session_bind_mismatches_total{binding="user_agent"}`
	)
	rows := []struct{ name, command string }{
		{"a renewal", "X-Session-Renew: true"},
		{"a login as another user", "X-Session-Set-User: mallory"},
		{"the identity key deleted", "X-Session-Delete: user"},
		{"remember me", "X-Session-Remember: true"},
		{"a write", "X-Session-Set-Cart: stolen"},
		{"a flash value", "X-Session-Flash-Notice: hello"},
		{"a logout", "X-Session-Destroy: true"},
		{"a logout everywhere", "X-Session-Destroy-All: true"},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "bind user_agent")
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				owner := s.visitor()
				r := owner.do(http.MethodGet, "/login", "User-Agent", firefox,
					"Test-Header", "X-Session-Set-User: alice", "Test-Header", "X-Session-Set-Cart: apple")
				expectStatus(t, r, http.StatusOK)
				stolen := owner.sid
				if stolen == "" {
					t.Fatal("the login set no session cookie")
				}

				before := scrapeMetrics(t)
				stranger := &visitor{site: s, sid: stolen}
				r = stranger.do(http.MethodGet, "/account", "User-Agent", curl, "Test-Header", row.command)
				expectStatus(t, r, http.StatusOK)
				expectSession(t, r, map[string]string{})
				if c := r.sessionCookie(); c != nil && c.Value == stolen {
					t.Fatalf("the stranger's response set the owner's ID: %q", r.Header.Values("Set-Cookie"))
				}
				if got := scrapeMetrics(t)[metric] - before[metric]; got != 1 {
					t.Errorf("%s went up by %v for one stranger's request, want 1", metric, got)
				}

				r = owner.do(http.MethodGet, "/account", "User-Agent", firefox)
				expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
				if owner.sid != stolen {
					t.Fatalf("the owner's session moved to a new ID after the stranger's %q", row.command)
				}
				if c := r.sessionCookie(); c != nil && c.Value != "" && c.Value != stolen {
					t.Fatalf("the owner was given another cookie: %q", r.Header.Values("Set-Cookie"))
				}
				if r.Header.Get("X-Session-Meta-Remembered") != "" || r.seen.Headers.Get("X-Session-Meta-Remembered") != "" {
					t.Fatal("the stranger's remember me made the owner's session remembered")
				}
			})
		}
	})
}
