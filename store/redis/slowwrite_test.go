package redis

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestSlowWriteAfterANewerTouch: a write by a request that began before
// another touched the session reads the session, stops before its write,
// and the touch runs to its end meanwhile. Its write is refused, and
// read again it keeps the touch's deadlines (a touch never moves them
// back), so it no longer moves the index entry: on Cluster, where the
// refused attempt had already put its own, earlier score in the index
// (step 1 of writeCluster), the retry must put the session's back, or the
// index says the session ends sooner than it does.
//
// The same for a slow touch alone, which read again writes nothing.
func TestSlowWriteAfterANewerTouch(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		for _, cart := range []bool{true, false} {
			slowWriteAfterANewerTouch(t, b, cart)
		}
	})
}

func slowWriteAfterANewerTouch(t *testing.T, b backend, cart bool) {
	s := b.newStore(t, Options{})
	inspector := b.inspector(t, s)
	flush(t, inspector)
	defer checkedStore{Store: s, inspector: inspector, t: t}.Close()
	h := session.HashID("slow")
	up := func(now time.Time, patch *session.Patch) store.Update {
		return store.Update{Hash: h, HasHash: true, Patch: patch, Identity: "user", Seen: "alice",
			Now: now, Timeouts: timeouts, Limits: limits}
	}
	start := up(base, &session.Patch{Set: map[string]string{"user": "alice"}})
	start.HasHash, start.NewHash = false, &h
	if _, err := s.Update(t.Context(), start); err != nil {
		t.Fatal(err)
	}
	touchedAt := base.Add(5 * time.Minute)
	s.beforeWrite = func() {
		s.beforeWrite = nil
		if _, err := s.Update(t.Context(), up(touchedAt, nil)); err != nil {
			t.Fatal(err)
		}
	}
	var patch *session.Patch
	if cart {
		patch = &session.Patch{Set: map[string]string{"cart": "apple"}}
	}
	if _, err := s.Update(t.Context(), up(base.Add(time.Minute), patch)); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Load(t.Context(), h, touchedAt, timeouts)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.LastSeen.Equal(touchedAt) || cart != (rec.Values["cart"] == "apple") {
		t.Fatalf("the session is %+v, want last seen at the touch, %v (cart set: %v)", rec, touchedAt, cart)
	}
}
