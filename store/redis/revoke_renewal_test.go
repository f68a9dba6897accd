package redis

import (
	"errors"
	"testing"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestDeleteByIdentityRacingARenewal: a revocation by user (X-Session-
// Destroy-All, the admin API's revoke by user, `caddy session revoke
// --user`) races a renewal of one of the user's sessions by another
// request or instance, which gives it a new ID between the revocation's
// read of the session and its delete. SECURITY.md ("Server-side logout"):
// "no request in flight brings an ended session back, and a logout racing
// a renewal ends the renewed session". On bolt the revocation is one
// transaction. On Redis, DeleteByIdentity reads the index bucket once
// (ZRANGE) and then deletes member by member; the delete of the renewed
// session conflicts, is tried again, finds a forward record, which it
// does not follow, and the successor, indexed after the ZRANGE, is never
// seen: the user stays logged in on that device.
func TestDeleteByIdentityRacingARenewal(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	old := create(t, s, "laptop", base, timeouts, map[string]string{"user": "alice"})
	successor := session.HashID("laptop, renewed")

	s.beforeWrite = func() {
		s.beforeWrite = nil
		// The laptop's request renews the session, as X-Session-Renew or
		// a privilege change does, while the revocation is under way.
		if _, err := s.Update(t.Context(), store.Update{
			Hash: old, HasHash: true, NewHash: ptr(successor), Patch: &session.Patch{Renew: true},
			Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits,
		}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Load(t.Context(), successor, base, timeouts)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after revoking every session of alice (%d ended), the session her renewal moved to is still live (Load: %v)", n, err)
	}
}
