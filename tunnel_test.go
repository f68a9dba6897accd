package caddysession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestTunnelCheckInterval: the check interval defaults to a minute, or
// touch_interval if shorter (so that a config with a short idle_timeout,
// valid before tunnels were checked, stays valid), keep turns checks off,
// and an interval that lets an open tunnel's session expire idle between
// two checks is refused.
func TestTunnelCheckInterval(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		want    time.Duration
		refused string
	}{
		{"default", Handler{}, time.Minute, ""},
		{"short touch_interval", Handler{IdleTimeout: caddy.Duration(40 * time.Second), TouchInterval: caddy.Duration(10 * time.Second)}, 10 * time.Second, ""},
		{"given", Handler{Tunnels: &TunnelsConfig{CheckInterval: caddy.Duration(5 * time.Second)}}, 5 * time.Second, ""},
		{"keep", Handler{Tunnels: &TunnelsConfig{Keep: true}}, 0, ""},
		{"keep and an interval", Handler{Tunnels: &TunnelsConfig{Keep: true, CheckInterval: caddy.Duration(time.Second)}}, 0, "keep takes no check_interval"},
		{"not shorter than idle_timeout", Handler{Tunnels: &TunnelsConfig{CheckInterval: caddy.Duration(30 * time.Minute)}}, 30 * time.Minute, "must be shorter than idle_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if err := h.provisionSettings(); err != nil {
				t.Fatal(err)
			}
			if h.tunnelCheck != tt.want {
				t.Errorf("check interval %s, want %s", h.tunnelCheck, tt.want)
			}
			err := h.validateTunnels()
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("got %v, want an error saying %q", err, tt.refused)
			}
		})
	}
}

// endingOld is a fallback_store whose first Load of end returns the
// session and then ends it underneath, before the caller's next step: a
// logout committed in the old store by a request of the same handler,
// between the read of a copy on first use and the copy's check that the
// session still lives there.
type endingOld struct {
	store.Store
	end  session.Hash
	once sync.Once
}

func (s *endingOld) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	rec, err := s.Store.Load(ctx, hash, now, t)
	if hash == s.end && err == nil {
		s.once.Do(func() {
			if err := s.Store.Delete(ctx, hash); err != nil {
				panic(err)
			}
		})
	}
	return rec, err
}

// TestTunnelCheckCopiesNothing: the check of an open tunnel runs inside
// the store calls of ends (relayStore), which may hold moveMu's read lock
// (a copy on first use, store.Fallback.Copying) and the tunnel's own lock.
// A check that read the session through the fallback_store took moveMu
// again, a read lock that a waiting reload (unwatch) blocks, and copied
// the session from the old store back into the new one, live: a session
// that an end had just removed from the new store (another handler of it,
// without fallback_store, ended it; the old store's end comes after)
// opened again, and the tunnel stayed open. When the old store's session
// ended during that copy, the copy removed its import from the new store,
// an end whose relay checked the same tunnel again under its own lock:
// the check never returned, holding moveMu, and the next reload hung.
// A check reads the new store only: the handshake's load copied the
// session there, and a session gone from it has ended.
func TestTunnelCheckCopiesNothing(t *testing.T) {
	oldCfg, _ := json.Marshal(map[string]any{
		"backend": "bolt", "path": filepath.Join(t.TempDir(), "old.db"), "no_sync": true,
	})
	h := provisionedHandler(t, func(h *Handler) { h.FallbackStoreRaw = oldCfg })
	// Cleaned up unless a check deadlocked: unwatch would wait for its
	// read lock of moveMu for ever.
	var deadlocked atomic.Bool
	t.Cleanup(func() {
		if !deadlocked.Load() {
			h.Cleanup()
		}
	})
	var copies atomic.Int32
	copying := h.fallback.Copying
	h.fallback.Copying = func() (func(), bool) {
		copies.Add(1)
		return copying()
	}

	for _, endsMeanwhile := range []bool{false, true} {
		t.Run(fmt.Sprintf("ended in the old store during a copy: %v", endsMeanwhile), func(t *testing.T) {
			// In the old store only: the new store's end has committed.
			hash := session.HashID(session.NewID())
			old := h.fallback.Old
			if _, err := old.Update(t.Context(), store.Update{
				NewHash: &hash, Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
				Identity: h.identity, Realm: h.realm, Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
			}); err != nil {
				t.Fatal(err)
			}
			if endsMeanwhile {
				h.fallback.Old = &endingOld{Store: old, end: hash}
				defer func() { h.fallback.Old = old }()
			}
			copies.Store(0)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tun := &tunnel{h: h, hash: hash, seen: "alice", cancel: cancel}
			openTunnels.add(tun)
			defer openTunnels.remove(tun)
			checked := make(chan struct{})
			go func() {
				defer close(checked)
				tun.check(context.Background(), false)
			}()
			select {
			case <-checked:
			case <-time.After(10 * time.Second): // bounds a failing test only
				deadlocked.Store(true)
				t.Fatal("the tunnel's check never returned: it deadlocked")
			}
			if !tun.closed || ctx.Err() == nil {
				t.Error("the tunnel of a session gone from the store stayed open")
			}
			if n := copies.Load(); n != 0 {
				t.Errorf("the check asked to copy from the fallback_store %d times, taking moveMu", n)
			}
			if _, err := h.fallback.New.Load(t.Context(), hash, clock.Now(), h.timeouts); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the new store holds the ended session (%v): the check copied it back", err)
			}
		})
	}
}
