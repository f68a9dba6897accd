package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// unreplicated is a store whose every update that it makes comes back
// with ErrUnreplicated, as Redis's with wait_replicas when too few
// replicas acknowledge in time: made, whole, and said so.
type unreplicated struct{ store.Store }

func (s unreplicated) Update(ctx context.Context, u store.Update) (store.Result, error) {
	res, err := s.Store.Update(ctx, u)
	if err == nil {
		err = fmt.Errorf("waiting for replicas: %w", store.ErrUnreplicated)
	}
	return res, err
}

// TestFallbackFollowedOldRenewalSaysSoUnreplicated: an update through the
// fallback of an ID the old store renewed away (followOld) lands in the
// successor, and its Result says it followed (Followed, Acted the
// successor), whether the new store's replicas acknowledged the write in
// time or not: an update that wraps ErrUnreplicated was made, and comes
// with its Result, as one store's does. The stale copy reads Followed to
// tombstone the successor an end or a renewal moved on; without it, the
// successor the logout ended stayed in the copy, served once the store
// failed.
func TestFallbackFollowedOldRenewalSaysSoUnreplicated(t *testing.T) {
	cases := []struct {
		name  string
		patch *session.Patch
		renew bool
		// the update leaves the session where it acted
		stays bool
	}{
		{"a logout", &session.Patch{Destroy: true}, false, false},
		{"a renewal", &session.Patch{Renew: true}, true, false},
		{"a set", &session.Patch{Set: map[string]string{"cart": "apple"}}, false, true},
	}
	for _, tc := range cases {
		for _, lagging := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, replicas lagging %v", tc.name, lagging), func(t *testing.T) {
				oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
				var to store.Store = newS
				if lagging {
					to = unreplicated{newS}
				}
				f := &store.Fallback{New: to, Old: oldS, Identity: "user"}
				h := login(t, oldS, "alice-id", "alice", base)
				now := base.Add(time.Second)
				// Renewed in the old store before the fallback copied it.
				next := rotateIn(t, oldS, h, "alice", "alice", "successor", now)

				u := in(h, "alice", now, tc.patch)
				if tc.renew {
					renewed := session.HashID("renewed-through-the-fallback")
					u.NewHash = &renewed
				}
				res, err := f.Update(t.Context(), u)
				if lagging && !errors.Is(err, store.ErrUnreplicated) || !lagging && err != nil {
					t.Fatalf("the update through the fallback: %v", err)
				}
				if !res.Followed {
					t.Errorf("the update landed in the successor of the old store's renewal, and its Result says it followed nothing")
				}
				if res.Acted != next {
					t.Errorf("the update acted on %s, want the successor %s", res.Acted.Short(), next.Short())
				}
				if stays := res.Record != nil && res.Hash == res.Acted; stays != tc.stays {
					t.Errorf("the update left the session where it acted: %v, want %v", stays, tc.stays)
				}
			})
		}
	}
}
