package redis

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestDeleteByIdentityRacingARenewal: a revocation by user (X-Session-
// Destroy-All, the admin API's revoke by user, `caddy session revoke
// --user`) races a renewal of one of the user's sessions by another
// request or instance, which gives it a new ID between the revocation's
// read of the index and its delete of the session. SECURITY.md ("Server-
// side logout"): "no request in flight brings an ended session back, and
// a logout racing a renewal ends the renewed session". On bolt the
// revocation is one transaction. On Redis, DeleteByIdentity reads the
// index bucket once (ZRANGE) and then deletes member by member: the
// delete of the renewed session finds a forward record, on its first
// read or on the read again after its write was refused, and must follow
// it, as Update does: the successor, indexed after the ZRANGE, is in no
// list the revocation holds. A renewal that is a login as another user
// hands the session over to them: not the revoked user's to end.
func TestDeleteByIdentityRacingARenewal(t *testing.T) {
	t.Parallel()
	type when int
	const (
		beforeRead      when = iota // after the ZRANGE, before the session is read
		beforeWrite                 // between the read of the session and its delete
		beforeEachWrite             // one renewal before each write of the revocation
	)
	alice := []string{"alice"}
	tests := []struct {
		name string
		when when
		// users are the users the session has after each renewal, in
		// order: alice for a renewal, another for a login as them.
		users []string
		// retry: the revocation gives up with an error, and ends the
		// session when tried again.
		retry bool
	}{
		{"a renewal before its delete", beforeWrite, alice, false},
		{"a renewal before it reads the session", beforeRead, alice, false},
		{"two renewals in a row before its delete", beforeWrite, []string{"alice", "alice"}, false},
		{"a renewal before each of its writes, store.MaxHops times", beforeEachWrite, slices.Repeat(alice, store.MaxHops), false},
		{"a renewal before each of its writes, once more than store.MaxHops", beforeEachWrite, slices.Repeat(alice, store.MaxHops+1), true},
		{"a login as another user before its delete", beforeWrite, []string{"bob"}, false},
		{"a login as another user before it reads the session", beforeRead, []string{"bob"}, false},
		{"a renewal, then a login as another user, each before one of its writes", beforeEachWrite, []string{"alice", "bob"}, false},
	}
	both(t, func(t *testing.T, b backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := b.newStore(t, Options{})
				inspector := b.inspector(t, s)
				flush(t, inspector)
				defer checkedStore{Store: s, inspector: inspector, t: t}.Close()

				hashes := []session.Hash{create(t, s, "laptop", base, timeouts, map[string]string{"user": "alice"})}
				renewed := 0
				renew := func() {
					from, to := hashes[renewed], session.HashID(fmt.Sprint("laptop, renewed ", renewed+1))
					seen := "alice"
					if renewed > 0 {
						seen = tc.users[renewed-1]
					}
					renewed++
					// The laptop's next request renews the session, as
					// X-Session-Renew or a privilege change does, or
					// logs in as someone else.
					if _, err := s.Update(t.Context(), store.Update{
						Hash: from, HasHash: true, NewHash: ptr(to),
						Patch:    &session.Patch{Renew: true, Set: map[string]string{"user": tc.users[renewed-1]}},
						Identity: "user", Seen: seen, Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
					}); err != nil {
						t.Fatalf("renewal %d: %v", renewed, err)
					}
					hashes = append(hashes, to)
				}
				// The renewals' own writes call beforeWrite too, on this
				// goroutine.
				busy := false
				hook := func(all bool) func() {
					return func() {
						if busy || renewed == len(tc.users) {
							return
						}
						busy = true
						defer func() { busy = false }()
						renew()
						for all && renewed < len(tc.users) {
							renew()
						}
					}
				}
				switch tc.when {
				case beforeRead:
					s.afterIndexRead = hook(true)
				case beforeWrite:
					s.beforeWrite = hook(true)
				case beforeEachWrite:
					s.beforeWrite = hook(false)
				}
				n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice")
				s.afterIndexRead, s.beforeWrite = nil, nil
				if renewed != len(tc.users) {
					t.Fatalf("the revocation let %d of the %d renewals run", renewed, len(tc.users))
				}
				if tc.retry {
					if err == nil {
						t.Fatalf("a revocation racing %d renewals in a row ended %d sessions and no error; want an error past store.MaxHops", renewed, n)
					}
					n, err = s.DeleteByIdentity(t.Context(), "", "user", "alice")
				}
				if err != nil {
					t.Fatal(err)
				}

				last, owner := hashes[len(hashes)-1], tc.users[len(tc.users)-1]
				rec, err := s.Load(t.Context(), last, base.Add(time.Minute), timeouts)
				switch {
				case owner == "alice" && !errors.Is(err, store.ErrNotFound):
					t.Errorf("after revoking every session of alice (%d ended), the session her %d renewals moved to is still live: %+v, %v", n, renewed, rec, err)
				case owner == "alice" && n != 1:
					t.Errorf("the revocation ended %d sessions, want 1: the one her renewals moved to", n)
				case owner != "alice" && (err != nil || rec.Values["user"] != owner):
					t.Errorf("the session %s logged in to: %+v, %v; want it live, %s's", owner, rec, err, owner)
				case owner != "alice" && n != 0:
					t.Errorf("the revocation of alice ended %d sessions, want none: hers became %s's", n, owner)
				}
				if entries, err := s.ListByIdentity(t.Context(), "", "user", "alice", base.Add(time.Minute)); err != nil || len(entries) != 0 {
					t.Errorf("after the revocation, alice's sessions: %+v, %v; want none", entries, err)
				}
			})
		}
	})
}
