package redis

import (
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestListByIdentityDigestClash: an entry in an identity's bucket with its
// digest, whose session belongs to someone else (what two identities whose
// digests collide would leave, or a stale entry), lists nothing.
func TestListByIdentityDigestClash(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		alice := create(t, s, "alice", base, timeouts, map[string]string{"user": "alice"})
		mallory := create(t, s, "mallory", base, timeouts, map[string]string{"user": "mallory"})
		bucket, digest := s.identityBucket("user", "alice")
		own := s.entryOf(mustLoad(t, s, mallory), "user", mallory)
		do(t, s, "ZADD", bucket, own.score, string(mallory[:])+digest)
		entries, err := s.ListByIdentity(t.Context(), "", "user", "alice", base)
		if err != nil || len(entries) != 1 || entries[0].Hash != alice {
			t.Fatalf("ListByIdentity(alice) = %+v, %v; want alice's session only", entries, err)
		}
		entries, err = s.ListByIdentity(t.Context(), "", "user", "mallory", base)
		if err != nil || len(entries) != 1 || entries[0].Hash != mallory {
			t.Fatalf("ListByIdentity(mallory) = %+v, %v; want mallory's session only", entries, err)
		}
		// The revocation of alice drops the entry, and leaves mallory's
		// session alone.
		if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
			t.Fatalf("DeleteByIdentity(alice) = %d, %v; want 1", n, err)
		}
		mustLoad(t, s, mallory)
		checkConsistent(t, s)
	})
}

func mustLoad(t *testing.T, s *Store, h session.Hash) *session.Record {
	t.Helper()
	rec, err := s.Load(t.Context(), h, base, timeouts)
	if err != nil {
		t.Fatalf("Load of %s: %v", h.Short(), err)
	}
	return rec
}
