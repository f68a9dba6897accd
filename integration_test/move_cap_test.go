package integration_test

import (
	"net/http"
	"testing"
)

// TestMoveCapCountsBothStores: max_sessions_per_identity during a
// move. A user's sessions in the old store, not copied yet, count
// against the cap of a login through the new config, which ends the
// least recently seen of them in both stores; a migrate afterwards
// brings none of the ended ones back, and the user has no more
// sessions than the cap allows.
func TestMoveCapCountsBothStores(t *testing.T) {
	for _, move := range storeMoves {
		t.Run(move.name, func(t *testing.T) {
			from, to := move.from(t), move.to(t)
			s := newSiteOn(t, "store "+from, "max_sessions_per_identity 2")
			first, second := s.visitor(), s.visitor()
			first.get("/login", "X-Session-Set-User: alice")
			second.get("/login", "X-Session-Set-User: alice")
			s.store = "store " + to + "\n\t\tfallback_store " + from
			s.load()
			third := s.visitor()
			third.get("/login", "X-Session-Set-User: alice")
			var stats map[string]any
			sessionAPI(t, http.MethodPost, "/session/migrate", "").decode(t, http.StatusOK, &stats)
			expectUser(t, &visitor{site: s, sid: first.sid}, "")
			expectUser(t, second, "alice")
			expectUser(t, third, "alice")
			// The move is over: only the new store opens sessions.
			s.store = "store " + to
			s.load()
			expectUser(t, &visitor{site: s, sid: first.sid}, "")
			expectUser(t, second, "alice")
			expectUser(t, third, "alice")
		})
	}
}
