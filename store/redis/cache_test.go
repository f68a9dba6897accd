package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// eventually polls cond until it holds or the deadline passes. It is for
// what another connection learns from Redis's invalidation messages, which
// come when they come: the bound here is a safety net, not a measure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCacheServesReads(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
		t.Fatal(err)
	}
	before := commandCalls(t, s)["hgetall"]
	hits, _ := s.cache.Stats()
	for range 10 {
		if rec, err := s.Load(t.Context(), h, base, timeouts); err != nil || rec.Values["user"] != "alice" {
			t.Fatalf("Load = %+v, %v", rec, err)
		}
	}
	if after := commandCalls(t, s)["hgetall"]; after != before {
		t.Fatalf("10 cached reads ran HGETALL %d times", after-before)
	}
	if h2, _ := s.cache.Stats(); h2-hits != 10 {
		t.Fatalf("cache hits went up by %d, want 10", h2-hits)
	}
}

// TestFreshLoadReadsRedis: a Load with a context marked store.Fresh
// reads the session from Redis, past both the decoded copy and the
// client's cache, and leaves them as they were; the next plain Load is
// served from the cache again.
func TestFreshLoadReadsRedis(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
		t.Fatal(err)
	}
	calls := func() int { return commandCalls(t, s)["hgetall"] }
	hits, _ := s.cache.Stats()
	before := calls()
	for i := range 3 {
		rec, err := s.Load(store.Fresh(t.Context()), h, base, timeouts)
		if err != nil || rec.Values["user"] != "alice" {
			t.Fatalf("fresh Load = %+v, %v", rec, err)
		}
		if n := calls() - before; n != i+1 {
			t.Fatalf("%d fresh reads ran HGETALL %d times", i+1, n)
		}
	}
	if h2, _ := s.cache.Stats(); h2 != hits {
		t.Fatalf("fresh reads were cache hits: %d", h2-hits)
	}
	before = calls()
	if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
		t.Fatal(err)
	}
	if n := calls() - before; n != 0 {
		t.Fatalf("the plain read after them ran HGETALL %d times", n)
	}
}

// TestOwnWritesDropCopyAtOnce: a write through the store is seen by its
// next read on the same store, with no wait for Redis's message.
func TestOwnWritesDropCopyAtOnce(t *testing.T) {
	t.Parallel()
	both(t, testOwnWritesDropCopyAtOnce)
}

func testOwnWritesDropCopyAtOnce(t *testing.T, b backend) {
	s := b.open(t)
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	load := func() (*session.Record, error) { return s.Load(t.Context(), h, base, timeouts) }
	for i := range 20 {
		if _, err := load(); err != nil {
			t.Fatal(err)
		}
		cart := fmt.Sprint(i)
		if _, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": cart}},
			Identity: "user", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
			t.Fatal(err)
		}
		if rec, err := load(); err != nil || rec.Values["cart"] != cart {
			t.Fatalf("read after write %d: %+v, %v", i, rec, err)
		}
	}
	renewed := session.HashID("renewed")
	if _, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
		Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	if rec, err := load(); err != nil || !rec.Forwarded() {
		t.Fatalf("read of the old ID after a rotation: %+v, %v; want the forward record", rec, err)
	}
	if _, err := s.Load(t.Context(), renewed, base, timeouts); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), renewed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(t.Context(), renewed, base, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read after Delete: %v, want ErrNotFound", err)
	}
}

// TestOtherInstanceWriteInvalidates: two stores on their own clients, as
// two Caddy instances: a change by one reaches the other's cache.
func TestOtherInstanceWriteInvalidates(t *testing.T) {
	t.Parallel()
	both(t, testOtherInstanceWriteInvalidates)
}

func testOtherInstanceWriteInvalidates(t *testing.T, b backend) {
	a := b.open(t)
	other := b.newStore(t, Options{})
	h := create(t, a, "a", base, timeouts, map[string]string{"user": "alice"})
	load := func() (*session.Record, error) { return other.Load(t.Context(), h, base, timeouts) }
	if _, err := load(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(t.Context(), store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "1"}},
		Identity: "user", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other instance sees the change", func() bool {
		rec, err := load()
		return err == nil && rec.Values["cart"] == "1"
	})
	if n, err := a.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("revocation: %d, %v", n, err)
	}
	eventually(t, "the other instance refuses the revoked session", func() bool {
		_, err := load()
		return errors.Is(err, store.ErrNotFound)
	})
}

// TestCacheDroppedWithItsConnection: a connection that closes, or stops
// answering its pings, takes its cache with it: reads go to Redis again
// and fail while it is away, rather than answer from a copy that no
// invalidation can reach any more.
func TestCacheDroppedWithItsConnection(t *testing.T) {
	t.Parallel()
	for _, freeze := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "stops answering"}[freeze], func(t *testing.T) {
			srv := redistest.Start(t)
			cache := NewCache(1 << 20)
			o := rueidis.ClientOption{
				InitAddress: []string{srv.Addr()}, ForceSingleClient: true, DisableRetry: true,
				Dialer:           net.Dialer{KeepAlive: 100 * time.Millisecond},
				ConnWriteTimeout: 300 * time.Millisecond,
			}
			cache.Configure(&o)
			client, err := rueidis.NewClient(o)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewWithClient(client, Options{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
			if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
				t.Fatal(err)
			}
			if freeze {
				srv.Pause()
				defer srv.Resume()
			} else {
				srv.Stop()
			}
			eventually(t, "reads fail once the connection is gone", func() bool {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				_, err := s.Load(ctx, h, base, timeouts)
				return err != nil
			})
			if cache.Size() != 0 {
				t.Fatalf("the cache still holds %d bytes", cache.Size())
			}
		})
	}
}

// TestCacheBound: the cache holds no more than its bound, however many
// sessions are read.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	const bound = 8 << 10
	s := standalone(t).newStore(t, Options{Cache: NewCache(bound)})
	for i := range 200 {
		h := create(t, s, fmt.Sprint("s", i), base, timeouts, map[string]string{"user": fmt.Sprint("u", i)})
		if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
			t.Fatal(err)
		}
		if n := s.cache.Size(); n > bound {
			t.Fatalf("after %d reads the cache holds %d bytes, over its bound of %d", i+1, n, bound)
		}
	}
	if s.cache.Size() == 0 {
		t.Fatal("the cache holds nothing")
	}
}

// TestInFlightReadOfWrittenKeyIsNotKept drives one connection's cache by
// hand: a read in flight when this process writes the key delivers its
// answer to its waiters but is not kept, while one in flight when Redis
// invalidates the key (a change before the read ran) is kept.
func TestInFlightReadOfWrittenKeyIsNotKept(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	client := mustClient(t, s)
	// Real answers to hand to the cache, as its connection would.
	message := func(text string) rueidis.RedisMessage {
		t.Helper()
		m, err := client.Do(t.Context(), client.B().Echo().Message(text).Build()).ToMessage()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	c := NewCache(1 << 20)
	cc := c.NewCacheStoreFn(rueidis.CacheStoreOption{})
	now := time.Now()
	cached := func(key string) bool {
		t.Helper()
		v, e := cc.Flight(key, "HGETALL", time.Minute, now)
		if e != nil {
			t.Fatalf("%s: a read is still in flight", key)
		}
		return v.IsString()
	}
	if cached("written") {
		t.Fatal("a cold cache answered")
	}
	c.Invalidate("written")
	cc.Update("written", "HGETALL", message("old"))
	if cached("written") {
		t.Fatal("a read in flight while this process wrote the key was kept")
	}
	if cached("changed before") {
		t.Fatal("a cold cache answered")
	}
	cc.Delete([]rueidis.RedisMessage{message("changed before")})
	cc.Update("changed before", "HGETALL", message("new"))
	if !cached("changed before") {
		t.Fatal("a read in flight when Redis invalidated an earlier copy was dropped")
	}
}

// TestReadAfterOwnWriteIsNotAnsweredByAnEarlierRead: a read of a key that
// this process starts after its own write of the key returned must not
// wait for, and take the answer of, a read of the key that was sent
// before the write and whose answer has not come yet. The write may have
// gone over another connection than the read (a write that waits for
// replicas runs on a connection of its own), so that answer can come
// after the write's. Joining it would hand a request the session as it
// was before, say, its logout on this very instance: "read your writes"
// (README, "Reads from a local cache").
//
// The answers come in the order the reads were sent, as on a connection:
// the earlier read gets the old one and keeps nothing, the later one the
// new one, which is kept.
func TestReadAfterOwnWriteIsNotAnsweredByAnEarlierRead(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	client := mustClient(t, s)
	message := func(text string) rueidis.RedisMessage {
		t.Helper()
		m, err := client.Do(t.Context(), client.B().Echo().Message(text).Build()).ToMessage()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	answer := func(e rueidis.CacheEntry) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		v, err := e.Wait(ctx)
		if err != nil {
			t.Fatalf("waiting for the answer: %v", err)
		}
		s, _ := v.ToString()
		return s
	}
	c := NewCache(1 << 20)
	cc := c.NewCacheStoreFn(rueidis.CacheStoreOption{})
	now := time.Now()

	if v, e := cc.Flight("k", "HGETALL", time.Minute, now); v.IsString() || e != nil {
		t.Fatal("a cold cache answered, or had a read in flight")
	}
	// The earlier read has a waiter, as a concurrent request would be.
	_, waiter := cc.Flight("k", "HGETALL", time.Minute, now)
	if waiter == nil {
		t.Fatal("a second read before any write did not wait for the one in flight")
	}
	c.Invalidate("k") // this process wrote k
	if v, e := cc.Flight("k", "HGETALL", time.Minute, now); e != nil || v.IsString() {
		t.Fatal("a read after this process wrote the key waits for the read sent before the write")
	}
	// A third read, after the second was sent, waits for the second.
	_, after := cc.Flight("k", "HGETALL", time.Minute, now)
	if after == nil {
		t.Fatal("a read after the write did not wait for the read sent after it")
	}
	cc.Update("k", "HGETALL", message("old"))
	if got := answer(waiter); got != "old" {
		t.Fatalf("the read sent before the write got %q, want old", got)
	}
	if v, e := cc.Flight("k", "HGETALL", time.Minute, now); v.IsString() || e == nil {
		t.Fatal("the answer of the read sent before the write was kept, or ended the read sent after it")
	}
	cc.Update("k", "HGETALL", message("new"))
	if got := answer(after); got != "new" {
		t.Fatalf("the read sent after the write got %q, want new", got)
	}
	if v, _ := cc.Flight("k", "HGETALL", time.Minute, now); !v.IsString() {
		t.Fatal("the answer of the read sent after the write was not kept")
	} else if s, _ := v.ToString(); s != "new" {
		t.Fatalf("the cache holds %q, want new", s)
	}
}

// TestUnknownIDsDoNotEvictSessions: a client can present any number of
// well-formed IDs the store does not know (six a request), each read from
// Redis once and cached as "no such session" so that a browser that keeps
// sending an ID that expired costs no round trip. Those answers must not
// push the sessions out of the cache: they are kept apart, in a small
// share of the bound, and go first.
func TestUnknownIDsDoNotEvictSessions(t *testing.T) {
	t.Parallel()
	const bound = 64 << 10
	s := standalone(t).newStore(t, Options{Cache: NewCache(bound)})
	var live []session.Hash
	for i := range 20 {
		h := create(t, s, fmt.Sprint("s", i), base, timeouts, map[string]string{"user": fmt.Sprint("u", i)})
		if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
			t.Fatal(err)
		}
		live = append(live, h)
	}
	for i := range 2000 {
		h := session.HashID(fmt.Sprint("unknown-", i))
		if _, err := s.Load(t.Context(), h, base, timeouts); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load of an unknown ID = %v, want ErrNotFound", err)
		}
		if n := s.cache.Size(); n > bound {
			t.Fatalf("after %d unknown IDs the cache holds %d bytes, over its bound of %d", i+1, n, bound)
		}
	}
	before := commandCalls(t, s)["hgetall"]
	for _, h := range live {
		if rec, err := s.Load(t.Context(), h, base, timeouts); err != nil || rec.Values["user"] == "" {
			t.Fatalf("Load = %+v, %v", rec, err)
		}
	}
	if n := commandCalls(t, s)["hgetall"] - before; n != 0 {
		t.Fatalf("after 2000 unknown IDs, reading 20 cached sessions again went to Redis %d times", n)
	}
	// The last unknown ID read is still known to be unknown: no round trip.
	last := session.HashID(fmt.Sprint("unknown-", 1999))
	before = commandCalls(t, s)["hgetall"]
	for range 3 {
		if _, err := s.Load(t.Context(), last, base, timeouts); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load of an unknown ID = %v, want ErrNotFound", err)
		}
	}
	if n := commandCalls(t, s)["hgetall"] - before; n != 0 {
		t.Fatalf("an unknown ID read again at once went to Redis %d times", n)
	}
}
