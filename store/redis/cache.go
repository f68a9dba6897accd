package redis

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/session"
)

// Cache is the local copy of the sessions this Caddy read, which Redis
// keeps correct by telling it of every change to a key it holds (RESP3
// client tracking). rueidis keeps one cache per connection, since Redis
// sends a key's invalidations to the connection that read it; Cache is
// all of them together, under one memory bound.
//
// Beyond what rueidis's own cache does, it drops a key at once when this
// process writes it (Invalidate): Redis's message for that write reaches
// the connection that read the key, which may be another one than the
// write's, a moment after the write's answer. And a read that was in flight
// when the key was written is not kept, nor waited for by a read that
// starts after the write: its answer may come after the write's (a write
// that waits for replicas runs on a connection of its own), and it holds
// the key as it was before.
type Cache struct {
	max  int64        // bytes, for every connection together
	size atomic.Int64 // bytes held, for every connection together
	// absentSize is the part of size held by answers that there is no such
	// session (see connCache.absent).
	absentSize atomic.Int64

	mu    sync.RWMutex
	conns map[*connCache]struct{}

	hits, misses atomic.Uint64

	// changed, if set, is told of every invalidation Redis sent, and of
	// every connection's cache dropped with its connection (OnChange).
	changed func(keys []string)
}

// OnChange has f called whenever Redis tells this cache that keys it
// read were changed (by another instance, or by this one), with their
// names, after they were dropped, and whenever a connection's cache is
// dropped with its connection, which ends its promises of telling (keys
// nil: any key). It is set before the cache serves a client. A request
// in flight learns from it that its session may have ended on another
// instance, without a read.
func (c *Cache) OnChange(f func(keys []string)) { c.changed = f }

// told calls the OnChange function, if any.
func (c *Cache) told(keys []string) {
	if c.changed != nil {
		c.changed(keys)
	}
}

// NewCache returns a cache of at most maxBytes for all connections.
func NewCache(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, conns: map[*connCache]struct{}{}}
}

// Configure sets up o, the options of the client this cache serves: the
// cache of each new connection, and how Redis tracks what it reads.
//
// Tracking is on for every read of the connection (CLIENT TRACKING ON
// OPTOUT), not opted into read by read (OPTIN, rueidis's default): under
// OPTIN, rueidis sends CLIENT CACHING YES before each cached read and
// takes no answer from it, so a Redis that refuses that command (an ACL
// user without client|caching) would leave reads cached that no
// invalidation ever reaches. Under OPTOUT, a Redis that refuses tracking
// refuses it when the connection starts, which the client reports as
// rueidis.ErrNoCache, and rueidis sends a harmless ECHO where it would
// opt in.
func (c *Cache) Configure(o *rueidis.ClientOption) {
	o.NewCacheStoreFn = c.NewCacheStoreFn
	o.ClientTrackingOptions = []string{"OPTOUT"}
	o.DisableCache = false
}

// NewCacheStoreFn is the rueidis.ClientOption of the same name: the cache
// of each new connection.
func (c *Cache) NewCacheStoreFn(rueidis.CacheStoreOption) rueidis.CacheStore {
	cc := &connCache{parent: c, entries: map[string]*cacheEntry{}, superseded: map[string][]*cacheEntry{}, lru: list.New(), absent: list.New()}
	c.mu.Lock()
	c.conns[cc] = struct{}{}
	c.mu.Unlock()
	return cc
}

// Invalidate drops key from every connection's cache, and keeps no answer
// of a read of it that is still in flight.
func (c *Cache) Invalidate(key string) { c.drop(nil, []string{key}, false) }

// drop drops keys (every key if all) from every connection's cache, and
// keeps no answer of a read of them still in flight, except on told, the
// connection Redis told of the change (Delete), whose reads in flight
// were answered after it.
func (c *Cache) drop(told *connCache, keys []string, all bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for cc := range c.conns {
		cc.drop(keys, all, cc == told)
	}
}

// record returns the cached session under key, decoded when its answer
// came, if a connection holds a copy that is still good at now: the fast
// path of a read, without the client. The record is the caller's.
func (c *Cache) record(key string, now time.Time) (*session.Record, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for cc := range c.conns {
		if rec, ok := cc.record(key, now); ok {
			c.hits.Add(1)
			return rec, true
		}
	}
	return nil, false
}

// Size returns the bytes the cache holds.
func (c *Cache) Size() int64 { return c.size.Load() }

// Stats returns how many reads the cache answered and how many it did not.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// cacheEntry is one cached key, or a read of it in flight.
type cacheEntry struct {
	key     string
	val     rueidis.RedisMessage
	expires time.Time // the client-side TTL cap
	size    int64
	elem    *list.Element // in the LRU list; nil while in flight
	absent  bool          // no such session: elem is in the absent list
	// rec is val decoded, when it is a session's (nil for none, or for
	// fields that do not decode: the slow path reports those).
	rec *session.Record

	// In flight: done closes when the answer (val) or err is there.
	done  chan struct{}
	err   error
	stale bool // this process wrote the key since the read was sent
}

func (e *cacheEntry) Wait(ctx context.Context) (rueidis.RedisMessage, error) {
	select {
	case <-ctx.Done():
		return rueidis.RedisMessage{}, ctx.Err()
	case <-e.done:
		return e.val, e.err
	}
}

// entryOverhead approximates the bytes of an entry beside its key and
// answer: the struct, the map slot and the list element.
const entryOverhead = 200

// connCache is the cache of one connection: a rueidis.CacheStore. rueidis
// calls Delete with the keys Redis invalidated, and Close when the
// connection breaks (a connection that stops answering is closed by its
// pings: see the package documentation), which drops the whole cache.
type connCache struct {
	parent *Cache

	mu      sync.Mutex
	entries map[string]*cacheEntry
	// superseded are the reads in flight of a key that this process wrote
	// since they were sent, oldest first, which a later read replaced in
	// entries (see Flight). Answers come in the order the reads were
	// sent, so the next answer for the key is the oldest one's.
	superseded map[string][]*cacheEntry
	lru        *list.List // of *cacheEntry, least recently used first
	// absent holds, apart from lru, the answers that there is no such
	// session, least recently used first. A client chooses the IDs it
	// presents, six a request: were these answers in lru, a stream of
	// random IDs would push every session out of the cache, and each
	// read of a session would go to Redis again. They are kept, so that a
	// browser that keeps sending an ID that ended costs no round trip, but
	// only within a share of the bound (absentShare), and they go first
	// when the cache is full.
	absent *list.List
	closed bool
}

// absentShare is the share of the cache's bound, 1/absentShare, that
// answers of no such session may hold.
const absentShare = 8

// listOf returns the list that holds e.
func (cc *connCache) listOf(e *cacheEntry) *list.List {
	if e.absent {
		return cc.absent
	}
	return cc.lru
}

var _ rueidis.CacheStore = (*connCache)(nil)

// Flight implements rueidis.CacheStore. Only one command is cached per key
// (the session's HGETALL), so cmd is not part of the entry's identity.
func (cc *connCache) Flight(key, _ string, ttl time.Duration, now time.Time) (rueidis.RedisMessage, rueidis.CacheEntry) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e := cc.entries[key]; e != nil {
		if e.elem == nil && !e.stale {
			return rueidis.RedisMessage{}, e
		}
		if e.elem == nil {
			// Sent before this process wrote the key: its answer is the
			// key as it was. This read is sent anew, and the old one
			// waits for its answer aside.
			cc.superseded[key] = append(cc.superseded[key], e)
			cc.parent.misses.Add(1)
			cc.entries[key] = &cacheEntry{key: key, expires: now.Add(ttl), done: make(chan struct{})}
			return rueidis.RedisMessage{}, nil
		}
		if now.Before(e.expires) {
			cc.listOf(e).MoveToBack(e.elem)
			cc.parent.hits.Add(1)
			return e.val, nil
		}
		cc.remove(e)
	}
	cc.parent.misses.Add(1)
	if !cc.closed {
		cc.entries[key] = &cacheEntry{key: key, expires: now.Add(ttl), done: make(chan struct{})}
	}
	return rueidis.RedisMessage{}, nil
}

// Update implements rueidis.CacheStore: the answer to a read in flight.
func (cc *connCache) Update(key, _ string, val rueidis.RedisMessage) int64 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if old := cc.popSuperseded(key); old != nil {
		old.val = val
		close(old.done)
		return 0
	}
	e := cc.entries[key]
	if e == nil || e.elem != nil {
		return 0
	}
	e.val = val
	close(e.done)
	if e.stale {
		delete(cc.entries, key)
		return 0
	}
	fields, err := val.AsStrMap()
	if err == nil && len(fields) > 0 {
		e.rec, _, _ = decode(fields)
	}
	e.size = entryOverhead + 2*int64(len(key)) + fieldsSize(fields)
	e.absent = err == nil && len(fields) == 0
	e.elem = cc.listOf(e).PushBack(e)
	cc.parent.size.Add(e.size)
	if e.absent {
		cc.parent.absentSize.Add(e.size)
	}
	cc.evict()
	return e.expires.UnixMilli()
}

// Cancel implements rueidis.CacheStore: a read in flight failed.
//
// Which of several reads of the key failed, it does not say: when some of
// them were superseded, all of them fail, rather than a later answer be
// handed to a read sent after it, or an earlier one to a read sent after
// a write.
func (cc *connCache) Cancel(key, _ string, err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for old := cc.popSuperseded(key); old != nil; old = cc.popSuperseded(key) {
		old.err = err
		close(old.done)
	}
	if e := cc.entries[key]; e != nil && e.elem == nil {
		e.err = err
		close(e.done)
		delete(cc.entries, key)
	}
}

// Delete implements rueidis.CacheStore: Redis invalidated keys (all of
// them if nil). They are dropped from every connection's cache, not only
// this one's: Redis tells each connection that read a key, each in its
// own time (a FLUSHALL tells every connection), and a read between two of
// those messages found, through another connection's copy, what the news
// had just said changed (withheld.go reads an answer's session again
// through the cache on that news). A read in flight on this connection is
// left alone: its answer, sent after the read, is newer than the change
// this message is about. One on another connection is not kept, as after
// this process's own write: its answer may be older.
func (cc *connCache) Delete(keys []rueidis.RedisMessage) {
	var names []string
	if keys != nil {
		names = make([]string, 0, len(keys))
		for _, k := range keys {
			if name, err := k.ToString(); err == nil {
				names = append(names, name)
			}
		}
	}
	cc.parent.drop(cc, names, keys == nil)
	// Told once the keys are gone, so that a read then asks Redis.
	cc.parent.told(names)
}

// Close implements rueidis.CacheStore: the connection is gone, and with
// it every promise of invalidation.
func (cc *connCache) Close(err error) {
	cc.mu.Lock()
	cc.closed = true
	for key := range cc.superseded {
		for old := cc.popSuperseded(key); old != nil; old = cc.popSuperseded(key) {
			old.err = err
			close(old.done)
		}
	}
	for _, e := range cc.entries {
		if e.elem == nil {
			e.err = err
			close(e.done)
			delete(cc.entries, e.key)
		} else {
			cc.remove(e)
		}
	}
	cc.mu.Unlock()
	cc.parent.mu.Lock()
	delete(cc.parent.conns, cc)
	cc.parent.mu.Unlock()
	cc.parent.told(nil)
}

// popSuperseded removes and returns the oldest superseded read of key in
// flight, nil if none. The caller holds cc.mu.
func (cc *connCache) popSuperseded(key string) *cacheEntry {
	q := cc.superseded[key]
	if len(q) == 0 {
		return nil
	}
	if len(q) == 1 {
		delete(cc.superseded, key)
	} else {
		cc.superseded[key] = q[1:]
	}
	return q[0]
}

// record returns a copy of the decoded session cached under key, if it is
// there and still good at now.
func (cc *connCache) record(key string, now time.Time) (*session.Record, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e := cc.entries[key]
	if e == nil || e.elem == nil || e.rec == nil || !now.Before(e.expires) {
		return nil, false
	}
	cc.listOf(e).MoveToBack(e.elem)
	return e.rec.Clone(), true
}

// drop drops keys (every key if all) from this connection's cache, and
// keeps no answer of a read of them in flight, unless inFlightIsNewer.
func (cc *connCache) drop(keys []string, all, inFlightIsNewer bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	one := func(e *cacheEntry) {
		switch {
		case e.elem != nil:
			cc.remove(e)
		case !inFlightIsNewer:
			e.stale = true
		}
	}
	if all {
		for _, e := range cc.entries {
			one(e)
		}
		return
	}
	for _, key := range keys {
		if e := cc.entries[key]; e != nil {
			one(e)
		}
	}
}

// remove drops a cached (not in-flight) entry. The caller holds cc.mu.
func (cc *connCache) remove(e *cacheEntry) {
	cc.listOf(e).Remove(e.elem)
	delete(cc.entries, e.key)
	cc.parent.size.Add(-e.size)
	if e.absent {
		cc.parent.absentSize.Add(-e.size)
	}
}

// evict drops the least recently used answers of no such session of this
// connection while they hold more than their share of the bound, then its
// least recently used entries, those answers first, while the whole cache
// is over its bound. The caller holds cc.mu.
func (cc *connCache) evict() {
	for cc.parent.absentSize.Load() > cc.parent.max/absentShare {
		if !cc.removeFront(cc.absent) {
			break
		}
	}
	for cc.parent.size.Load() > cc.parent.max {
		if !cc.removeFront(cc.absent) && !cc.removeFront(cc.lru) {
			return
		}
	}
}

// removeFront removes the least recently used entry of l, and reports
// whether there was one. The caller holds cc.mu.
func (cc *connCache) removeFront(l *list.List) bool {
	front := l.Front()
	if front == nil {
		return false
	}
	cc.remove(front.Value.(*cacheEntry))
	return true
}

// fieldsSize approximates the bytes of a cached answer, a session hash's
// fields and values, held twice: as the answer and decoded.
func fieldsSize(fields map[string]string) int64 {
	n := int64(64)
	for k, v := range fields {
		n += 2 * (int64(len(k)+len(v)) + 32)
	}
	return n
}
