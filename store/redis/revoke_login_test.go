package redis

import (
	"testing"
)

// TestDeleteByIdentityRacingALogin: a revocation by user reads the
// user's index while a login of the same user is on its way. On Cluster
// the login indexes its session first and writes it second; a revocation
// between the two finds an entry whose session is not there yet. It must
// leave that entry (nothing guards its removal against the write that
// comes next): removed, the login's session would be live in no index,
// out of reach of every later revocation and listing of the user until
// it expired. On a single server the login is one script and there is no
// such moment; the test runs on both.
func TestDeleteByIdentityRacingALogin(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.newStore(t, Options{})
		inspector := b.inspector(t, s)
		flush(t, inspector)
		defer checkedStore{Store: s, inspector: inspector, t: t}.Close()

		revoked := -1
		s.afterIndexed = func() {
			s.afterIndexed = nil
			n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice")
			if err != nil {
				t.Errorf("the revocation during the login: %v", err)
			}
			revoked = n
		}
		phone := create(t, s, "phone", base, timeouts, map[string]string{"user": "alice"})
		if b.name == "cluster" && revoked != 0 {
			t.Fatalf("the revocation between the login's index and its write ended %d sessions; want 0", revoked)
		}
		listed, err := s.ListByIdentity(t.Context(), "", "user", "alice", base)
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 1 || listed[0].Hash != phone {
			t.Fatalf("after the login, alice's sessions are listed as %v; want her phone's %s", listed, phone.Short())
		}
		if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
			t.Fatalf("revoking alice after her login ended %d sessions (%v); want her phone's", n, err)
		}
	})
}
