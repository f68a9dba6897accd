package store_test

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// rotateIn gives the session under h in s a new ID, setting user (the
// same user: a renewal; another: a login from that session), as a
// request still served by the config before fallback_store does in the
// old store.
func rotateIn(t *testing.T, s store.Store, h session.Hash, seen, user, id string, now time.Time) session.Hash {
	t.Helper()
	u := in(h, seen, now, &session.Patch{Renew: true, Set: map[string]string{"user": user}})
	next := session.HashID(id)
	u.NewHash = &next
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return next
}

// TestFallbackEndsWhatTheOldStoreMovedOn: the session was copied into the
// new store on first use, and then given a new ID in the old store by a
// request of the config before the cutover, still in flight. A logout or
// renewal through the fallback of the ID the request presented ends the
// successor in the old store too, as one store would (a logout racing a
// renewal ends the renewed session), and so does a revocation of that ID
// (a revocation follows a renewal to the device's new ID): otherwise the successor, whose
// cookie the renewal sent, is copied back into use on its next request.
// A login as another user in the old store is not undone: a login wins
// over requests in flight, as in one store.
func TestFallbackEndsWhatTheOldStoreMovedOn(t *testing.T) {
	logout, renewal := &session.Patch{Destroy: true}, &session.Patch{Renew: true}
	cases := []struct {
		name string
		// patch is the update through the fallback; nil: a revocation
		// (Delete) of the ID the request presented
		patch *session.Patch
		// users the old store's rotations log in, one hop each
		users []string
		// the successor is still there afterwards
		kept bool
	}{
		{"a logout after a renewal", logout, []string{"alice"}, false},
		{"a logout after two renewals", logout, []string{"alice", "alice"}, false},
		{"a renewal after a renewal", renewal, []string{"alice"}, false},
		{"a revocation after a renewal", nil, []string{"alice"}, false},
		{"a revocation after two renewals", nil, []string{"alice", "alice"}, false},
		{"a logout after a login as another user", logout, []string{"bob"}, true},
		{"a logout after a renewal and then a login as another user", logout, []string{"alice", "bob"}, true},
		{"a revocation after a login as another user", nil, []string{"bob"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
			f := &store.Fallback{New: newS, Old: oldS, Identity: "user"}
			h := login(t, oldS, "alice-id", "alice", base)
			now := base.Add(time.Second)
			if has(t, f, h, now) == nil { // the first use copies it
				t.Fatal("the session is not found through the fallback")
			}
			last, seen := h, "alice"
			for i, user := range tc.users {
				last = rotateIn(t, oldS, last, seen, user, "successor-"+string(rune('a'+i)), now)
				seen = user
			}

			switch {
			case tc.patch == nil:
				if err := f.Delete(t.Context(), h); err != nil {
					t.Fatal(err)
				}
			default:
				u := in(h, "alice", now, tc.patch)
				if tc.patch.Renew {
					next := session.HashID("renewed-through-the-fallback")
					u.NewHash = &next
				}
				if _, err := f.Update(t.Context(), u); err != nil {
					t.Fatal(err)
				}
			}
			later := now.Add(session.ForwardTTL + time.Second)
			got := has(t, f, last, later)
			switch {
			case tc.kept && got == nil:
				t.Fatal("the old store's login as another user was ended")
			case !tc.kept && got != nil:
				t.Fatalf("the successor the old store made is found again through the fallback: %v", got.Values)
			}
		})
	}
}
