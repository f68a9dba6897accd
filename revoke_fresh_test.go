package caddysession

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// laggingStore answers a Load of a session it holds a copy of with that
// copy, as a cache that has not yet heard of a later write does (Redis's
// tracked cache, until the invalidation arrives); a Load with a context
// marked store.Fresh reads the store.
type laggingStore struct {
	store.Store
	copies map[session.Hash]*session.Record
}

// lagBehind returns h's store lagging at the sessions under hashes as
// they are now.
func lagBehind(t *testing.T, h *Handler, hashes ...session.Hash) *laggingStore {
	t.Helper()
	l := &laggingStore{Store: h.store, copies: map[session.Hash]*session.Record{}}
	for _, hash := range hashes {
		rec, err := h.store.Load(t.Context(), hash, clock.Now(), h.timeouts)
		if err != nil {
			t.Fatal(err)
		}
		l.copies[hash] = rec
	}
	return l
}

func (l *laggingStore) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	if rec, ok := l.copies[hash]; ok && !store.IsFresh(ctx) {
		return rec.Clone(), nil
	}
	return l.Store.Load(ctx, hash, now, t)
}

// TestRevokeReadsPastALaggingCache: the reads that decide a revocation
// are not answered by a cached copy from before another instance's write.
// A session renewed elsewhere after it was listed is still revoked through
// its forward record, which a copy from before the renewal would hide (the
// cap's eviction: TestEvictionOfASessionThatRotated); a request whose own
// session ended elsewhere while it was in flight revokes nothing, though a
// copy from before still shows its session live.
func TestRevokeReadsPastALaggingCache(t *testing.T) {
	t.Run("revoke of a session renewed elsewhere", func(t *testing.T) {
		h, id, _, other := twoSessions(t)
		base := h.store
		var successor session.Hash
		h.store = &listedStore{Store: lagBehind(t, h, *other), afterList: func() {
			successor = rotate(t, base, h, *other, map[string]string{"cart": "x"})
		}}
		if _, err := serveWith(t, h, id, "X-Session-Revoke: "+other.Short()); err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
		h.store = base
		if isLive(t, h, successor) {
			t.Error("the successor of the revoked session is live")
		}
	})
	t.Run("revoke from a session that ended elsewhere", func(t *testing.T) {
		h, id, mine, other := twoSessions(t)
		base := h.store
		h.store = &listedStore{Store: lagBehind(t, h, *mine), beforeList: func() { deleteIn(t, base, h, *mine) }}
		_, err := serveWith(t, h, id, "X-Session-Revoke: "+other.Short())
		expectWithheld(t, err)
		h.store = base
		if !isLive(t, h, *other) {
			t.Error("a request whose session had ended revoked another")
		}
	})
}
