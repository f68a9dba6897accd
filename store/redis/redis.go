// Package redis is a store.Store in Redis (6.2 or later, or a protocol-
// compatible fork such as Valkey), so that several Caddy instances behind
// a load balancer share their sessions. It works with a single server,
// with Redis Sentinel and with Redis Cluster, through rueidis, which
// pipelines the commands of concurrent requests on a few connections.
//
// # Reads from a local cache
//
// A session read is served from a local copy while Redis has not said
// that the key changed: RESP3 client tracking makes Redis send every
// connection that read a key a message when any client writes it (or it
// expires), and rueidis drops the copy then. This process's own writes
// drop the copy at once, before their answer returns (see Cache). A
// client-side TTL (Options.CacheTTL) caps how long a copy is used at all;
// a connection that breaks, or stops answering its pings, drops its whole
// cache. Where Redis refuses tracking, the store reads without a cache.
//
// # Key layout
//
// Every key starts with a prefix, "caddy-session:" by default:
//
//   - <prefix>{<hash>}: one Redis hash per session, <hash> being the
//     session hash in lowercase hex. Its fields are the session's keys
//     (a-z 0-9 - _) with their values, and reserved fields, which start
//     with ':' and so cannot collide with a session key: ":v" (the layout
//     version, 1), ":created", ":seen", ":idle" and ":absolute" (the
//     record's times, as decimal unix nanoseconds), ":identity" (the
//     identity key the session is indexed under, absent if none),
//     ":realm" (the session's realm, absent if none: a session stored
//     before realms), ":rev" (a count of the writes, for compare-and-set)
//     and, only where the session has them, the fields of its metadata
//     (":remembered", ":user-agent", ":flash:<key>"; see meta.go). Its
//     TTL is the record's earlier deadline plus store.ExpiryGrace (for
//     the requests in flight across it), so Redis removes expired
//     sessions by itself: there is no sweeper. The braces are a Cluster
//     hash tag: the key's slot depends on the hash alone.
//   - The same key holds a forward record once the session has moved to a
//     new hash (see store.Decide): the same reserved fields but
//     ":identity", no session keys, and ":next", the hex hash of the
//     successor. Its TTL is at most session.ForwardTTL, and it is in no
//     index. Its ":v" stays 1: an older Caddy sharing the Redis during a
//     rolling upgrade reads it as an empty session about to expire.
//   - <prefix>ix:<bucket>: the index, in 4096 sorted sets (<bucket> is
//     three hex digits). A session's entry is its raw 32-byte hash followed
//     by an 8-byte digest of its identity (SHA-256 of the identity key, a
//     zero byte and the value; 8 zero bytes for a session with none), and
//     its score is the session's deadline in unix microseconds. A session
//     with an identity is in the bucket of its digest, so that the
//     sessions of one user are in one small set; one without is in the
//     bucket of its hash. The index counts live sessions with ZCOUNT,
//     finds a user's sessions for DeleteByIdentity, and pages through all
//     of them for List; a write to a bucket drops its entries that expired
//     over an hour ago (the margin allows for clocks of Caddy instances
//     that differ a little), so no sweeper is needed. Small sets are
//     listpacks in Redis, about 60 bytes per session.
//
// Layout 1 of the previous versions had the same session hashes, and two
// other indexes: <prefix>sessions, a sorted set of the hex hashes of all
// sessions, and <prefix>identity:<key>:<sha256 of value, hex>, a set per
// user. Sessions written that way keep working: a write indexes them in
// the buckets, and List, Count and DeleteByIdentity first move the
// entries left in <prefix>sessions into the buckets (see migrate). The
// identity sets of layout 1 expire by their TTL.
//
// # Atomicity
//
// Every Update reads the session, has store.Decide work out the change
// (session.Patch.ApplyTo checks the limits on the merged record) and
// writes back only what changed: HSET of the fields set, HDEL of the keys
// deleted and PEXPIRE, never a rewrite of the whole hash, so two requests
// that set different keys keep each other's change. The write is a script
// (see ops) that first checks that the session's ":rev" is still the one
// read, and writes nothing otherwise; the update then starts again from a
// fresh read, a bounded number of times. A *session.RuleError returns
// before anything is written. A forward record is followed by reading the
// successor the same way, guarded by its own read: the forward record
// itself never changes once written.
//
// On a single server or Sentinel, one script call holds everything an
// operation writes, index included: creation, rotation, destroy and delete
// happen whole or not at all.
//
// On Redis Cluster, the keys of one session share a slot, but the index
// buckets and, in a rotation, the old and the new session key each live in
// slots of their own, which one script cannot span. There every write
// goes in this order: index entries are added first, then the new session
// key is written, then the old one is changed or deleted if its ":rev" is
// still the one read, then stale index entries are removed. So a crash
// between the steps never loses a session: at worst the old ID of a
// rotation lives on until its TTL beside the new one, and the index holds
// entries for sessions that are gone, which List and DeleteByIdentity
// check against the session itself, and which Count counts until their
// deadline.
package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// DefaultKeyPrefix is the default Options.KeyPrefix.
const DefaultKeyPrefix = "caddy-session:"

// DefaultCacheTTL is the default Options.CacheTTL.
const DefaultCacheTTL = time.Minute

// Reserved fields of a session hash. They start with ':', which no session
// key can.
const (
	fieldVersion  = ":v"
	fieldCreated  = ":created"
	fieldSeen     = ":seen"
	fieldIdle     = ":idle"
	fieldAbsolute = ":absolute"
	fieldIdentity = ":identity"
	fieldRev      = ":rev"
	fieldRealm    = ":realm"
	fieldNext     = ":next"
)

// layoutVersion is the value of fieldVersion. A future layout of the
// session hash gets a new one, so that a Caddy that does not know it
// refuses the record instead of misreading it.
const layoutVersion = "1"

const (
	// maxAttempts bounds how often an update starts again because another
	// writer changed the session between its read and its write. Each
	// round of conflicting writers lets one of them through, so this is
	// also about how many requests of one session may write at once
	// before some get an error.
	maxAttempts = 64
	// expiredMargin is how long after its deadline an index entry is kept,
	// so that clocks of Caddy instances that differ a little cannot drop
	// the entry of a session another instance still counts as live.
	expiredMargin = time.Hour
)

// Options configure a Store. The zero value is the default.
type Options struct {
	// KeyPrefix starts every key the store uses. It must not contain '{'
	// or '}', which would change the Cluster hash tag of session keys.
	// Default: DefaultKeyPrefix.
	KeyPrefix string
	// Cache is the client's cache of session reads, which this store drops
	// keys from as it writes them. nil when the client caches nothing.
	Cache *Cache
	// CacheTTL is the longest a cached read is used. Default:
	// DefaultCacheTTL.
	CacheTTL time.Duration
	// WaitReplicas, if positive, makes every write that starts, ends or
	// moves a session wait until that many replicas have it (Redis WAIT),
	// at most WaitTimeout, and fail if they do not: a failover then cannot
	// bring back a session that was logged out or rotated away.
	WaitReplicas int
	// WaitTimeout bounds the wait for replicas. Default: one second.
	WaitTimeout time.Duration
	// KeepClient makes Close leave the client open: it is shared with
	// other stores, and its owner closes it.
	KeepClient bool
	// OnIndexError, if set, is called with the error of a write to the
	// index that was not part of the session's own write: on Redis
	// Cluster the index steps around it, and the move of layout 1 index
	// entries. The operation itself succeeded; the index may hold a stale
	// entry, which readers skip.
	OnIndexError func(error)
}

// Connect makes the client, or returns the one made before. The store
// calls it whenever it needs Redis and has no client yet, so an
// unreachable Redis at start is an error of the requests that need it
// until it answers: Connect bounds how often it dials (the Caddy module
// tries at most once a second, and shares one client among its stores).
type Connect func() (rueidis.Client, error)

// Store is a store.Store in Redis. It is safe for concurrent use.
type Store struct {
	connect  Connect
	prefix   string
	cache    *Cache
	cacheTTL time.Duration
	wait     int
	waitFor  time.Duration
	onIndex  func(error)
	keep     bool

	mu      sync.Mutex
	client  rueidis.Client
	cluster bool
	closed  bool

	// beforeWrite, a test's hook, is called in an Update after
	// store.Decide and before the writes it decided, which are made only
	// if the session is still as it was read.
	beforeWrite func()
	// afterIndexRead, a test's hook, is called in DeleteByIdentity and
	// ListByIdentity after the read of the identity's index bucket and
	// before the sessions it lists are read.
	afterIndexRead func()
	// afterIndexed, a test's hook, is called in a Cluster write after its
	// first step, which indexes the session, and before its second, which
	// writes it.
	afterIndexed func()
}

var _ store.Store = (*Store)(nil)

// New returns a store that keeps sessions in the Redis that connect
// reaches. Close closes the client.
func New(connect Connect, opts Options) (*Store, error) {
	if connect == nil {
		return nil, errors.New("the redis session store needs a way to connect")
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if err := CheckKeyPrefix(prefix); err != nil {
		return nil, err
	}
	s := &Store{
		connect: connect, prefix: prefix, cache: opts.Cache, cacheTTL: opts.CacheTTL,
		wait: opts.WaitReplicas, waitFor: opts.WaitTimeout, onIndex: opts.OnIndexError,
		keep: opts.KeepClient,
	}
	if s.cacheTTL <= 0 {
		s.cacheTTL = DefaultCacheTTL
	}
	if s.waitFor <= 0 {
		s.waitFor = time.Second
	}
	if s.onIndex == nil {
		s.onIndex = func(error) {}
	}
	return s, nil
}

// NewWithClient returns a store on a client that is already connected.
func NewWithClient(client rueidis.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("the redis session store needs a client")
	}
	return New(func() (rueidis.Client, error) { return client, nil }, opts)
}

// CheckKeyPrefix returns an error if prefix cannot start the store's keys.
func CheckKeyPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("key prefix %q must not contain '{' or '}': they would change which Redis Cluster slot a session is stored in", prefix)
	}
	return nil
}

// Client returns the store's client, connecting if it has none yet.
func (s *Store) Client() (rueidis.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, errors.New("redis session store: closed")
	case s.client != nil:
		return s.client, nil
	}
	client, err := s.connect()
	if err != nil {
		return nil, redisError("connecting", err)
	}
	s.client, s.cluster = client, client.Mode() == rueidis.ClientModeCluster
	return client, nil
}

// Close closes the client, unless Options.KeepClient. Calling it again
// does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.client != nil && !s.keep {
			s.client.Close()
		}
	}
	return nil
}

// SessionKey returns the Redis key of the session stored under hash.
func (s *Store) SessionKey(hash session.Hash) string {
	return s.prefix + "{" + hash.String() + "}"
}

// HashOfKey returns the hash of the session that key, a SessionKey of any
// prefix, holds; false for a key that holds none (an index bucket).
func HashOfKey(key string) (session.Hash, bool) {
	open := strings.LastIndexByte(key, '{')
	if open < 0 || !strings.HasSuffix(key, "}") {
		return session.Hash{}, false
	}
	hash, err := session.ParseHash(key[open+1 : len(key)-1])
	return hash, err == nil
}

// redisError wraps an error of the client so that the log says where it
// came from. It is never ErrNotFound: an unreachable server is a failure,
// not an anonymous request.
func redisError(what string, err error) error {
	return fmt.Errorf("redis session store: %s: %w", what, err)
}

// Load implements store.Store. It reads through the cache, unless ctx is
// marked by store.Fresh.
func (s *Store) Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := s.load(ctx, hash, now, !store.IsFresh(ctx))
	if err != nil {
		return nil, err
	}
	// Redis's TTL ends the session at its stored deadline; the timeouts
	// may be shorter since the configuration changed. A forward record
	// has its deadlines only.
	if rec.Forwarded() && rec.Expired(now) || !rec.Forwarded() && timeouts.Expired(rec, now) {
		return nil, store.ErrNotFound
	}
	return rec, nil
}

// load reads the record under hash, store.ErrNotFound if there is none.
// With cached set, it is decoded from the cache if that holds it, or else
// read through the client's cache; without, it is read from Redis.
func (s *Store) load(ctx context.Context, hash session.Hash, now time.Time, cached bool) (*session.Record, error) {
	key := s.SessionKey(hash)
	if cached && s.cache != nil {
		if rec, ok := s.cache.record(key, now); ok {
			return rec, nil
		}
	}
	fields, _, err := s.read(ctx, key, cached)
	if err != nil {
		return nil, redisError("reading session "+hash.Short(), err)
	}
	if len(fields) == 0 {
		return nil, store.ErrNotFound
	}
	rec, _, err := decode(fields)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", hash.Short(), err)
	}
	return rec, nil
}

// read returns the fields of the session hash under key, from the cache
// if cached is set, and whether they came from it (a copy that no write
// has checked yet). The map is the caller's.
func (s *Store) read(ctx context.Context, key string, cached bool) (map[string]string, bool, error) {
	client, err := s.Client()
	if err != nil {
		return nil, false, err
	}
	if cached {
		res := client.DoCache(ctx, client.B().Hgetall().Key(key).Cache().ToStaticTTL(), s.cacheTTL)
		fields, err := res.AsStrMap()
		return fields, err == nil && res.IsCacheHit(), err
	}
	fields, err := client.Do(ctx, client.B().Hgetall().Key(key).Build()).AsStrMap()
	return fields, false, err
}

// errConflict is an attempt that another writer got ahead of: nothing of
// it was written to the session it read, and it is made again.
var errConflict = errors.New("the session changed since it was read")

// Update implements store.Store. It reads the record under u.Hash and has
// store.Decide work out the outcome, which it executes; a forward record
// sends it on to the successor, read and written the same way. A forward
// record never changes once written, so following it needs no guard: the
// write to the successor is guarded by its own read.
func (s *Store) Update(ctx context.Context, u store.Update) (store.Result, error) {
	if err := ctx.Err(); err != nil {
		return store.Result{}, err
	}
	var c *change
	var err error
	if u.HasHash {
		c, err = s.follow(ctx, u)
	} else {
		// Nothing to read, so nothing another writer could change.
		c = s.plan(u, store.Decide(u, session.Hash{}, nil, 0), nil, "")
		if !c.noop() {
			err = s.write(ctx, c)
		}
	}
	if err != nil {
		if c != nil && errors.Is(err, store.ErrUnreplicated) {
			return c.o.Result, err // made: the caller needs where it left the session
		}
		return store.Result{}, err
	}
	return c.o.Result, c.o.Err
}

// follow runs u from the record under u.Hash on through forward records
// until Decide says what to do, and does it.
func (s *Store) follow(ctx context.Context, u store.Update) (*change, error) {
	at := u.Hash
	for hop := 0; ; hop++ {
		c, err := s.modify(ctx, at, func(fields map[string]string) (*change, error) {
			var stored *session.Record
			var identity string
			if len(fields) > 0 {
				var err error
				if stored, identity, err = decode(fields); err != nil {
					return nil, fmt.Errorf("session %s: %w; delete it to go on", at.Short(), err)
				}
			}
			return s.plan(u, store.Decide(u, at, stored, hop), stored, identity), nil
		})
		if err != nil || c.o.Next == nil {
			return c, err
		}
		at, u = *c.o.Next, c.o.Onward(u) // Decide bounds the hops
	}
}

// modify reads the fields of the session under hash (none when there is
// no such session), has decide work out the change, and makes it if
// nobody changed the session since the read; otherwise it starts again
// from a fresh read, a bounded number of times. The first read may come
// from the cache: a stale copy only costs a retry.
func (s *Store) modify(ctx context.Context, hash session.Hash, decide func(fields map[string]string) (*change, error)) (*change, error) {
	key := s.SessionKey(hash)
	cached := true // the first read may come from the cache
	for attempt := 1; ; attempt++ {
		fields, hit, err := s.read(ctx, key, cached)
		cached = false
		if err != nil {
			return nil, redisError("reading session "+hash.Short(), err)
		}
		c, err := decide(fields)
		if err == nil && hit && c != nil && c.o.Err != nil && c.noop() {
			// A refusal (a broken limit, an identity changed, a session
			// ended) decided on a cached copy, which no guard checks
			// since nothing is written: another instance may have
			// changed the session and Redis's invalidation not arrived
			// yet. Decide again on what Redis holds.
			attempt--
			continue
		}
		if c != nil {
			c.rev, c.guarded = fields[fieldRev], true
			if attempt > 1 {
				s.reassert(c)
			}
		}
		if err == nil && !c.noop() {
			if s.beforeWrite != nil {
				s.beforeWrite()
			}
			err = s.write(ctx, c)
		}
		if !errors.Is(err, errConflict) {
			return c, err
		}
		if attempt == maxAttempts {
			return nil, redisError(fmt.Sprintf("session %s changed under %d attempts in a row to update it", hash.Short(), attempt), err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// backoff waits a random moment that grows with attempt, so that writers
// that keep colliding on one session spread out. The first retry, after
// a stale cached read, is at once.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 1 {
		return nil
	}
	d := time.Duration(rand.Int64N(int64(min(attempt, 10)) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
