package integration_test

import (
	"net/http"
	"path/filepath"
	"testing"
)

// TestOutageFlashWaitsOutTheOutage: a flash value stored before the
// outage is not served from the copy (README: the copy is served "without
// a touch or flash values"), under either policy that serves the page, and
// is not lost: the first navigation once the store is back gets it, once.
func TestOutageFlashWaitsOutTheOutage(t *testing.T) {
	for _, policy := range []string{"anonymous", "stale 5m"} {
		t.Run(policy, func(t *testing.T) {
			t.Cleanup(func() { failReads.Store(false); failWrites.Store(false) })
			s := newSiteWith(t, "store faulty "+filepath.Join(t.TempDir(), "sessions.db"), "", "on_store_error "+policy)
			alice := s.visitor()
			expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			expectStatus(t, alice.get("/save", "X-Session-Flash-Notice: saved"), http.StatusOK)
			// Read again, so that the copy holds the session with its
			// flash value (a request that is no navigation takes none).
			alice.do(http.MethodGet, "/style.css")
			failReads.Store(true)
			failWrites.Store(true)
			r := alice.do(http.MethodGet, "/", "Sec-Fetch-Mode", "navigate")
			expectStatus(t, r, http.StatusOK)
			if got := r.session()["X-Session-Flash-Notice"]; got != "" {
				t.Fatalf("a navigation served while the store is down got the flash value %q", got)
			}
			failReads.Store(false)
			failWrites.Store(false)
			r = alice.do(http.MethodGet, "/", "Sec-Fetch-Mode", "navigate")
			if got := r.session()["X-Session-Flash-Notice"]; r.StatusCode != http.StatusOK || got != "saved" {
				t.Fatalf("the first navigation once the store is back: status %d, flash value %q, want 200 and saved", r.StatusCode, got)
			}
			r = alice.do(http.MethodGet, "/", "Sec-Fetch-Mode", "navigate")
			if got := r.session()["X-Session-Flash-Notice"]; got != "" {
				t.Fatalf("the flash value came twice: %q", got)
			}
		})
	}
}
