package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// The conformance suite runs with the cache on (the default) in
// TestConformance; here it runs with the cache off, so that both ways of
// reading are held to it.
func TestConformanceWithoutCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, CacheRecords: -1})
		if err != nil {
			t.Fatal(err)
		}
		if s.cache != nil {
			t.Fatal("CacheRecords -1 left the cache on")
		}
		return checkedStore{s, t}
	})
}

// TestCacheSeesEveryWrite reads a session into the cache, then changes it
// every way there is, and reads it after each change.
func TestCacheSeesEveryWrite(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	ctx := t.Context()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	load := func() *session.Record { return mustLoad(t, s, h) }
	load()
	if s.cache.get(h) == nil {
		t.Fatal("a Load did not fill the cache")
	}
	// Update.
	if _, err := s.Update(ctx, store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "apple"}},
		Identity: "user", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	if got := load().Values["cart"]; got != "apple" {
		t.Fatalf("after an update, Load gave cart %q", got)
	}
	// A copy, not the cached record.
	load().Values["cart"] = "changed by a caller"
	if got := load().Values["cart"]; got != "apple" {
		t.Fatalf("a caller's change reached the cache: %q", got)
	}
	// Import over it.
	rec := timeouts.NewRecord(base)
	rec.Values = map[string]string{"user": "bob"}
	if err := s.Put(ctx, []store.Entry{{Hash: h, Record: rec}}, "user"); err != nil {
		t.Fatal(err)
	}
	if got := load().Values["user"]; got != "bob" {
		t.Fatalf("after an import, Load gave user %q", got)
	}
	// DeleteByIdentity.
	if n, err := s.DeleteByIdentity(ctx, "", "user", "bob"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity = %d, %v", n, err)
	}
	if _, err := s.Load(ctx, h, base, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DeleteByIdentity, Load = %v", err)
	}
	// Delete.
	h = create(t, s, "b", base, timeouts, map[string]string{"user": "carol"})
	load()
	if err := s.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, h, base, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after Delete, Load = %v", err)
	}
}

// TestCacheSeesForwardRecords: a realm stamped by a write, the forward
// record a rotation leaves, and its sweep all reach the cache.
func TestCacheSeesForwardRecords(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	ctx := t.Context()
	h := create(t, s, "c", base, timeouts, map[string]string{"user": "dave"})
	load := func() *session.Record { return mustLoad(t, s, h) }
	// A write in a realm stamps it on a record of none.
	load()
	if _, err := s.Update(ctx, store.Update{Hash: h, HasHash: true, Identity: "user", Realm: "shop",
		Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	if got := load().Realm; got != "shop" {
		t.Fatalf("after a write in realm shop, Load gave realm %q", got)
	}
	// Renewal: the old hash holds a forward record at once.
	newHash := session.HashID("c2")
	if _, err := s.Update(ctx, store.Update{Hash: h, HasHash: true, NewHash: &newHash, Patch: &session.Patch{Renew: true},
		Identity: "user", Realm: "shop", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	fwd := load()
	if !fwd.Forwarded() || *fwd.Successor != newHash || len(fwd.Values) != 0 {
		t.Fatalf("after a renewal, Load of the old hash = %+v, want a forward record to the new one", fwd)
	}
	// A copy of the forward record too.
	fwd.Successor[0] ^= 0xff
	if got := load(); *got.Successor != newHash {
		t.Fatal("a caller's change of a forward record reached the cache")
	}
	// The sweep: the forward record ends first, then the session.
	if n, err := s.Sweep(base.Add(session.ForwardTTL)); err != nil || n != 0 {
		t.Fatalf("Sweep at the forward record's end = %d, %v; want it removed and not counted as a session", n, err)
	}
	if s.cache.get(h) != nil {
		t.Fatal("a swept forward record stayed in the cache")
	}
	h = newHash
	load()
	if n, err := s.Sweep(base.Add(timeouts.Absolute)); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if s.cache.get(h) != nil {
		t.Fatal("a swept record stayed in the cache")
	}
}

// TestCacheFillAfterForget: a record read before a write's commit is not
// cached after the write has forgotten it.
func TestCacheFillAfterForget(t *testing.T) {
	c := newRecordCache(10)
	h := session.HashID("a")
	stale := &session.Record{Values: map[string]string{"v": "old"}}
	gen := c.generation()
	c.forget(h) // a write commits while the read is under way
	c.fill(h, stale, gen)
	if c.get(h) != nil {
		t.Fatal("a record read before a forget was cached after it")
	}
	c.fill(h, stale, c.generation())
	if c.get(h) == nil {
		t.Fatal("a fill with the current generation was refused")
	}
}

func TestCacheBounded(t *testing.T) {
	c := newRecordCache(100)
	for i := range 1000 {
		c.fill(session.HashID(fmt.Sprint(i)), &session.Record{}, c.generation())
	}
	if n := len(c.records); n != 100 {
		t.Fatalf("the cache holds %d records, bound 100", n)
	}
}

// TestCacheUnderConcurrentWrites has readers and writers of a few sessions
// at once, one writer per session. Each writer counts up in its session
// and reads it back after every write: it must read what it wrote, never
// an older value that a reader left in the cache.
func TestCacheUnderConcurrentWrites(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	ctx := t.Context()
	hashes := make([]session.Hash, 4)
	for i := range hashes {
		hashes[i] = create(t, s, fmt.Sprint("s", i), base, timeouts, map[string]string{"n": "0000"})
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; !stop.Load() && i < 1_000_000; i++ {
				if _, err := s.Load(ctx, hashes[i%len(hashes)], base, timeouts); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for _, h := range hashes {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 100 {
				v := fmt.Sprintf("%04d", i+1)
				_, err := s.Update(ctx, store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"n": v}},
					Identity: "user", Now: base, Timeouts: timeouts, Limits: limits})
				if err != nil {
					t.Error(err)
					return
				}
				rec, err := s.Load(ctx, h, base, timeouts)
				if err != nil {
					t.Error(err)
					return
				}
				if got := rec.Values["n"]; got != v {
					t.Errorf("after writing %s, Load gave %s", v, got)
					return
				}
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
}

// mustLoad loads the session under h a second after base.
func mustLoad(t *testing.T, s *Store, h session.Hash) *session.Record {
	t.Helper()
	rec, err := s.Load(t.Context(), h, base.Add(time.Second), timeouts)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
