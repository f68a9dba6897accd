package caddysession

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// countingStore counts the updates that reach the store.
type countingStore struct {
	store.Store
	updates atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	c.updates.Add(1)
	return c.Store.Update(ctx, u)
}

// TestParallelRequestsTouchOnce sends many requests of one session at once,
// each loading the session before any has answered, when the session is
// due for a touch: one touch reaches the store, not one per request.
func TestParallelRequestsTouchOnce(t *testing.T) {
	cfg, _ := json.Marshal(map[string]any{
		"backend": "bolt", "path": filepath.Join(t.TempDir(), "sessions.db"), "no_sync": true,
	})
	h := &Handler{StoreRaw: cfg}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: h.store}
	h.store = counting

	// A session last seen two touch intervals ago.
	id, hash := newSessionID()
	past := clock.Now().Add(-2 * h.timeouts.TouchInterval)
	if _, err := h.store.Update(ctx, store.Update{
		NewHash: hash, Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
		Identity: h.identity, Now: past, Timeouts: h.timeouts, Limits: h.limits,
	}); err != nil {
		t.Fatal(err)
	}
	counting.updates.Store(0)

	const parallel = 16
	var loaded sync.WaitGroup
	loaded.Add(parallel)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		loaded.Done()
		loaded.Wait() // every request has loaded the record before any answers
		w.WriteHeader(http.StatusOK)
		return nil
	})
	u, _ := url.Parse("http://app.example.com/")
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newBenchRequest(u, http.Header{"Cookie": {"sid=" + id}})
			if err := h.ServeHTTP(&discard{h: http.Header{}}, r, next); err != nil {
				t.Error(err)
			}
			if r.Header.Get("X-Session-User") != "alice" {
				t.Error("the session was not loaded")
			}
		}()
	}
	wg.Wait()
	if n := counting.updates.Load(); n != 1 {
		t.Fatalf("%d parallel requests of a session due for a touch stored %d touches, want 1", parallel, n)
	}
	rec, err := h.store.Load(ctx, *hash, clock.Now(), h.timeouts)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.LastSeen.After(past) {
		t.Fatalf("the session was not touched: last seen %s", rec.LastSeen)
	}
}

func TestTouchFilter(t *testing.T) {
	var f touchFilter
	interval := time.Minute
	t0 := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	a, b := session.HashID("a"), session.HashID("b")
	steps := []struct {
		hash session.Hash
		at   time.Duration
		want bool
	}{
		{a, 0, true},
		{a, time.Second, false},
		{b, time.Second, true},
		{a, 59 * time.Second, false},
		{a, time.Minute, true}, // a new interval: a touch is due again
		{b, 61 * time.Second, true},
		{a, 90 * time.Second, false}, // claimed at 1m
		{a, 2 * time.Minute, true},
		{b, 5 * time.Minute, true}, // after two rotations, nothing is remembered
	}
	for _, s := range steps {
		if got := f.claim(s.hash, t0.Add(s.at), interval); got != s.want {
			t.Fatalf("claim(%x) at %s = %v, want %v", s.hash[:2], s.at, got, s.want)
		}
	}
	f.release(b)
	if !f.claim(b, t0.Add(5*time.Minute+time.Second), interval) {
		t.Fatal("a released claim still holds")
	}
	if len(f.cur)+len(f.old) > 3 {
		t.Fatalf("the filter keeps %d claims", len(f.cur)+len(f.old))
	}
}

// TestTouchFilterBounded: past maxTouches claims, touches are allowed
// without being remembered.
func TestTouchFilterBounded(t *testing.T) {
	var f touchFilter
	now := time.Now()
	for i := range maxTouches + 10 {
		var h session.Hash
		h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
		if !f.claim(h, now, time.Minute) {
			t.Fatalf("claim %d refused", i)
		}
	}
	if len(f.cur) != maxTouches {
		t.Fatalf("the filter holds %d claims, want at most %d", len(f.cur), maxTouches)
	}
}
