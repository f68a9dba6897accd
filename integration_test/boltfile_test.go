package integration_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestBoltFileRemoved: an operator removes the session file while Caddy
// runs. Caddy would otherwise go on writing to a file that nothing opens
// again, and every login or logout it acknowledged would be gone at the
// next start. Each write is a 503 that the log explains, before the app's
// answer reaches anyone; reading the sessions of the open file goes on.
func TestBoltFileRemoved(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sessions.db")
	s, logFile := faultSite(t, db)
	alice := s.visitor()
	expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		v        *visitor
		commands []string
	}{
		{"login", s.visitor(), []string{"X-Session-Set-User: bob", "Set-Cookie: app=1"}},
		{"set", alice, []string{"X-Session-Set-Cart: 3", "Set-Cookie: app=1"}},
		{"renew", alice, []string{"X-Session-Renew: true", "Set-Cookie: app=1"}},
		{"logout", alice, []string{"X-Session-Destroy: true", "Set-Cookie: app=1"}},
		{"logout everywhere", alice, []string{"X-Session-Destroy-All: true", "Set-Cookie: app=1"}},
	} {
		sid := tc.v.sid
		r := tc.v.get("/write", tc.commands...)
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s into a removed file: status %d, want 503", tc.name, r.StatusCode)
		}
		if len(r.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s into a removed file: the refused answer sets cookies: %q", tc.name, r.Header.Values("Set-Cookie"))
		}
		tc.v.sid = sid
	}
	expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
	waitForText(t, logFile, "removed or replaced while open")
}
