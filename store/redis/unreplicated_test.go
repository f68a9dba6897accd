package redis

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestUnreplicatedWriteReturnsItsResult: a rotation that no replica
// acknowledges within WaitTimeout (here there is none) is made on the
// master all the same; Update says so (store.ErrUnreplicated) and returns
// where the session now is, which the caller must hand the client: the
// old ID is a forward record now. On Cluster, where the rotation is made
// in steps, the steps after the unacknowledged one are made too, so that
// the old ID does not stay live beside the new one.
func TestUnreplicatedWriteReturnsItsResult(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		plain := b.open(t)
		h := create(t, plain, "unreplicated", base, timeouts, map[string]string{"user": "alice"})
		waiting := b.newStore(t, Options{WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
		renewed := session.HashID("renewed")
		res, err := waiting.Update(t.Context(), store.Update{Hash: h, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
			Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits})
		if !errors.Is(err, store.ErrUnreplicated) {
			t.Fatalf("a rotation no replica acknowledged: %v, want store.ErrUnreplicated", err)
		}
		if res.Record == nil || res.Hash != renewed || res.Record.Values["user"] != "alice" {
			t.Fatalf("its result is %+v, want the session under its new ID", res)
		}
		if rec, err := plain.Load(t.Context(), renewed, base, timeouts); err != nil || rec.Values["user"] != "alice" {
			t.Fatalf("the new ID opens %+v, %v", rec, err)
		}
		if rec, err := plain.Load(t.Context(), h, base, timeouts); err != nil || !rec.Forwarded() {
			t.Fatalf("the old ID holds %+v, %v; want the forward record", rec, err)
		}
	})
}
