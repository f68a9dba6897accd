package redis

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestListByIdentityRacingARenewal: the list of a user's sessions
// (devices, X-Session-Revoke's check, the cap of max_sessions_per_identity)
// races a renewal, which gives a session a new ID between the read of the
// index and the read of the session. The session is listed under its new
// ID: the cap that missed it would leave the user over it, and the list
// of devices would hide one. A session a login as someone else took over
// is theirs; a successor also listed by its own entry is listed once.
func TestListByIdentityRacingARenewal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		users []string // the users the session has after each renewal, in order
		// stale: the renewal is over before the listing, which finds an
		// entry left under the old ID (a Cluster writer that stopped
		// before step 4) beside the successor's own.
		stale bool
	}{
		{"a renewal", []string{"alice"}, false},
		{"two renewals in a row", []string{"alice", "alice"}, false},
		{"a login as another user", []string{"bob"}, false},
		{"a renewal, then a login as another user", []string{"alice", "bob"}, false},
		{"an entry left under the old ID", []string{"alice"}, true},
	}
	both(t, func(t *testing.T, b backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := b.newStore(t, Options{})
				inspector := b.inspector(t, s)
				flush(t, inspector)
				defer checkedStore{Store: s, inspector: inspector, t: t}.Close()

				now := base.Add(time.Minute)
				laptop := create(t, s, "laptop", base, timeouts, map[string]string{"user": "alice"})
				phone := create(t, s, "phone", base, timeouts, map[string]string{"user": "alice"})
				staleEntry := s.entryOf(mustLoad(t, s, laptop), "user", laptop)
				hashes := []session.Hash{laptop}
				renew := func() {
					for i, user := range tc.users {
						seen := "alice"
						if i > 0 {
							seen = tc.users[i-1]
						}
						to := session.HashID(fmt.Sprint("laptop, renewed ", i+1))
						if _, err := s.Update(t.Context(), store.Update{
							Hash: hashes[i], HasHash: true, NewHash: ptr(to),
							Patch:    &session.Patch{Renew: true, Set: map[string]string{"user": user}},
							Identity: "user", Seen: seen, Now: now, Timeouts: timeouts, Limits: limits,
						}); err != nil {
							t.Fatalf("renewal %d: %v", i+1, err)
						}
						hashes = append(hashes, to)
					}
				}
				if tc.stale {
					renew()
					do(t, s, "ZADD", staleEntry.bucket, staleEntry.score, staleEntry.member)
				} else {
					s.afterIndexRead = func() { s.afterIndexRead = nil; renew() }
				}
				entries, err := s.ListByIdentity(t.Context(), "", "user", "alice", now)
				if err != nil {
					t.Fatal(err)
				}
				last, owner := hashes[len(hashes)-1], tc.users[len(tc.users)-1]
				want := []session.Hash{phone}
				if owner == "alice" {
					want = append(want, last)
				}
				if got := listedHashes(entries); !sameHashes(got, want) {
					t.Errorf("alice's sessions: %s, want %s (the phone's, and the laptop's under its new ID if still hers)", shortHashes(got), shortHashes(want))
				}
				if tc.stale {
					do(t, s, "ZREM", staleEntry.bucket, staleEntry.member)
				}
			})
		}
	})
}

func listedHashes(entries []store.Entry) []session.Hash {
	out := make([]session.Hash, len(entries))
	for i, e := range entries {
		out[i] = e.Hash
	}
	return out
}

// sameHashes reports whether got holds exactly want, in hash order, as
// ListByIdentity returns them.
func sameHashes(got, want []session.Hash) bool {
	return slices.Equal(got, slices.SortedFunc(slices.Values(want), func(a, b session.Hash) int { return slices.Compare(a[:], b[:]) }))
}

func shortHashes(hashes []session.Hash) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = h.Short()
	}
	return out
}
