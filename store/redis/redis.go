// Package redis is a store.Store in Redis (6.2 or later, or a protocol-
// compatible fork such as Valkey), so that several Caddy instances behind
// a load balancer share their sessions. It works with a single server,
// with Redis Sentinel and with Redis Cluster, through go-redis's
// UniversalClient.
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
//     before realms) and ":rev" (a count of the writes, for
//     compare-and-set). Its TTL is the record's earlier deadline, so Redis
//     removes expired sessions by itself: there is no sweeper. The braces
//     are a Cluster hash tag: the key's slot depends on the hash alone.
//   - The same key holds a forward record once the session has moved to a
//     new hash (see store.Decide): the same reserved fields but
//     ":identity", no session keys, and ":next", the hex hash of the
//     successor. Its TTL is at most session.ForwardTTL, and it is in
//     neither index. Its ":v" stays 1: an older Caddy sharing the Redis
//     during a rolling upgrade ignores ":next" and reads it as an empty
//     session about to expire, much like the missing session it found
//     there before, where a new version would make it fail the request.
//   - <prefix>identity:<key>:<sha256 of value, hex>: a set of the hex
//     hashes of the sessions whose identity key <key> has that value, in
//     every realm (DeleteByIdentity reads each session's realm), for
//     DeleteByIdentity. Its TTL is kept past the absolute deadline of the
//     newest member.
//   - <prefix>sessions: a sorted set of the hex hashes of all sessions,
//     every score 0, so that List pages through the sessions in hash order
//     with ZRANGE BYLEX and a cursor. Redis cannot expire members of a set,
//     so the members of expired sessions stay until List, Count or a
//     session creation's cleanup probe finds their key gone.
//
// Only session keys contain a '{', so `SCAN MATCH '<prefix>{*'` finds the
// sessions (and forward records) and nothing else. Keys written before
// realms and forward records (no ":realm", no ":next") read as sessions of
// no realm, which the first write in a realm stamps.
//
// # Atomicity
//
// Every Update reads the session, has store.Decide work out the change
// (session.Patch.ApplyTo checks the limits on the merged record) and
// writes back only what changed: HSET of the fields set, HDEL of the keys
// deleted and PEXPIRE, never a rewrite of the whole hash, so two requests
// that set different keys keep each other's change. The write happens
// only if nobody wrote the session since the read; otherwise the update
// starts again from the read, a bounded number of times. A
// *session.RuleError returns before anything is written. A forward record
// is followed by reading the successor the same way, guarded by its own
// read: the forward record itself never changes once written.
//
// On a single server or Sentinel the read is under WATCH, and one
// MULTI/EXEC holds everything an operation writes, indexes included:
// creation, rotation, destroy and delete happen whole or not at all.
//
// On Redis Cluster, the keys of one session share a slot, but the indexes
// and, in a rotation, the old and the new session key each live in slots
// of their own, and one MULTI cannot span slots. There every write goes in
// this order: index entries are added first, then the new session key is
// written (one MULTI on its slot), then the old one is changed or deleted
// by a script that does so only if its ":rev" is still the one read (a
// compare-and-set: WATCH would hold a connection to one node while the
// other steps need connections to others), then stale index entries are
// removed and the new ones added again. So a crash between the steps never
// loses a session: at worst the old ID of a rotation lives on until its
// TTL beside the new one, and the indexes hold entries for sessions that
// are gone, which every reader checks against the session itself. Adding
// the entries again at the end, and checking the session again after
// removing an entry, repair the races left: a cleanup that removes an
// entry of a session still being written, and two renames of one session
// whose index steps cross.
package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// DefaultKeyPrefix is the default Options.KeyPrefix.
const DefaultKeyPrefix = "caddy-session:"

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

// layoutVersion is the value of fieldVersion. A future layout gets a new
// one, so that a Caddy that does not know it refuses the record instead of
// misreading it.
const layoutVersion = "1"

const (
	// maxAttempts bounds how often an update starts again because another
	// writer changed the session between its read and its write. Each
	// round of conflicting writers lets one of them through, so this is
	// also about how many requests of one session may write at once
	// before some get an error.
	maxAttempts = 64
	// listBatch is how many hashes List and Count read from the index at
	// a time.
	listBatch = 256
	// probeSize is how many index entries a session creation checks for
	// expired sessions. Each creation adds one entry and removes on
	// average probeSize times the share of stale ones, so the index stays
	// within about probeSize/(probeSize-1) of the live sessions.
	probeSize = 4
	// identityTTLMargin keeps an identity set past the absolute deadline
	// of its newest member, so that clocks of Caddy instances that differ
	// a little cannot let the set expire before a member does.
	identityTTLMargin = time.Hour
)

// Options configure a Store. The zero value is the default.
type Options struct {
	// KeyPrefix starts every key the store uses. It must not contain '{'
	// or '}', which would change the Cluster hash tag of session keys.
	// Default: DefaultKeyPrefix.
	KeyPrefix string
	// OnIndexError, if set, is called with the error of a write to an
	// index that was not part of the session's own transaction: the
	// cleanup of index entries of expired sessions, and on Redis Cluster
	// the index steps around the transaction. The operation itself
	// succeeded; the index may hold a stale entry, which readers skip.
	OnIndexError func(error)
}

// Store is a store.Store in Redis. It is safe for concurrent use.
type Store struct {
	client  goredis.UniversalClient
	cluster bool
	prefix  string
	onIndex func(error)

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// New returns a store that keeps sessions in client. Close closes the
// client; when several stores share one client, close the client instead.
func New(client goredis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("the redis session store needs a client")
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if err := CheckKeyPrefix(prefix); err != nil {
		return nil, err
	}
	_, cluster := client.(*goredis.ClusterClient)
	s := &Store{client: client, cluster: cluster, prefix: prefix, onIndex: opts.OnIndexError}
	if s.onIndex == nil {
		s.onIndex = func(error) {}
	}
	return s, nil
}

// CheckKeyPrefix returns an error if prefix cannot start the store's keys.
func CheckKeyPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("key prefix %q must not contain '{' or '}': they would change which Redis Cluster slot a session is stored in", prefix)
	}
	return nil
}

// Client returns the store's client.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// Close closes the client. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}

// SessionKey returns the Redis key of the session stored under hash.
func (s *Store) SessionKey(hash session.Hash) string {
	return s.prefix + "{" + hash.String() + "}"
}

// IndexKey returns the Redis key of the sorted set of all sessions.
func (s *Store) IndexKey() string { return s.prefix + "sessions" }

// IdentityKey returns the Redis key of the set of the sessions whose
// identity key is key with value. The value is hashed: it may be up to a
// few KiB of any header text, and the key stays short and printable.
func (s *Store) IdentityKey(key, value string) string {
	sum := sha256.Sum256([]byte(value))
	return s.prefix + "identity:" + key + ":" + hex.EncodeToString(sum[:])
}

// redisError wraps an error of the client so that the log says where it
// came from. It is never ErrNotFound: an unreachable server is a failure,
// not an anonymous request.
func redisError(what string, err error) error {
	return fmt.Errorf("redis session store: %s: %w", what, err)
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fields, err := s.client.HGetAll(ctx, s.SessionKey(hash)).Result()
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
	// Redis's TTL ends the session at its stored deadline; the timeouts
	// may be shorter since the configuration changed. A forward record
	// has its deadlines only.
	if rec.Forwarded() && rec.Expired(now) || !rec.Forwarded() && timeouts.Expired(rec, now) {
		return nil, store.ErrNotFound
	}
	return rec, nil
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
			err = s.write(ctx, nil, c)
		}
	}
	if err != nil {
		return store.Result{}, err
	}
	if c.newSession() {
		s.probe(ctx)
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
		at = *c.o.Next // Decide bounds the hops
	}
}

// modify reads the fields of the session under hash (none when there is
// no such session), has decide work out the change, and makes it if
// nobody changed the session since the read; otherwise it starts again
// from the read, a bounded number of times.
//
// On a single server the read is under WATCH and the change one
// MULTI/EXEC on the watching connection. On Cluster the change touches
// other slots, whose writes would need more connections while the
// watching one is held; a burst of such updates could take every
// connection of a node and wait on each other. There the read is plain,
// and the session's own write is a compare-and-set script on its ":rev"
// field, which every write increments.
func (s *Store) modify(ctx context.Context, hash session.Hash, decide func(fields map[string]string) (*change, error)) (*change, error) {
	key := s.SessionKey(hash)
	for attempt := 1; ; attempt++ {
		var c *change
		read := func(fields map[string]string) error {
			var err error
			c, err = decide(fields)
			if c != nil {
				c.rev = fields[fieldRev]
			}
			return err
		}
		var err error
		if s.cluster {
			var fields map[string]string
			fields, err = s.client.HGetAll(ctx, key).Result()
			if err != nil {
				return nil, redisError("reading session "+hash.Short(), err)
			}
			if err = read(fields); err == nil && !c.noop() {
				err = s.write(ctx, nil, c)
			}
		} else {
			err = s.client.Watch(ctx, func(tx *goredis.Tx) error {
				fields, err := tx.HGetAll(ctx, key).Result()
				if err != nil {
					return redisError("reading session "+hash.Short(), err)
				}
				if err := read(fields); err != nil || c.noop() {
					return err
				}
				return s.write(ctx, tx, c)
			}, key)
			if errors.Is(err, goredis.TxFailedErr) {
				err = errConflict
			}
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
// that keep colliding on one session spread out.
func backoff(ctx context.Context, attempt int) error {
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

// member is an entry of an identity set.
type member struct {
	set  string // the set's key; "" for none
	hash session.Hash
}

// change is what one write does: the execution of a store.Outcome, or of
// a Delete, in Redis's terms.
type change struct {
	o store.Outcome // the outcome executed, whose Result and Err Update returns

	old       session.Hash
	hasOld    bool   // old was read, and its key is compared before it is written
	rev       string // the ":rev" of the session read under old
	oldExists bool   // a record (live or expired) was stored under old
	removeOld bool   // delete the key under old

	forward *session.Record // the forward record to write under old, if any
	fwdTTL  time.Duration

	rec       *session.Record // the record as it now stands, nil if none
	target    session.Hash
	inPlace   bool     // patch the record under old, which is target
	set       []string // in place: the session keys set
	del       []string // in place: the session keys deleted
	identity  string   // the identity key the record is indexed under
	ttl       time.Duration
	setTTL    time.Duration // the identity set's TTL to extend to
	oldMember member        // the entry to remove from an identity set
	newMember member        // the record's identity set entry
	addMember bool          // newMember is to be added
}

// subject is the session the change is about, for errors.
func (c *change) subject() string {
	if c.rec != nil {
		return c.target.Short()
	}
	return c.old.Short()
}

// noop reports whether the change writes nothing.
func (c *change) noop() bool {
	return c == nil || c.rec == nil && !c.removeOld && c.oldMember.set == "" && c.forward == nil
}

// newSession reports whether the change created a session key, which is
// when the index is probed for stale entries.
func (c *change) newSession() bool {
	return c.rec != nil && !c.inPlace
}

// plan works out the writes of o, decided on stored, the record read
// under o.At (nil if none) and indexed under storedIdentity.
func (s *Store) plan(u store.Update, o store.Outcome, stored *session.Record, storedIdentity string) *change {
	c := &change{o: o, old: o.At, hasOld: u.HasHash}
	if !o.Writes() {
		return c
	}
	c.oldExists = stored != nil
	c.removeOld = o.Remove
	if stored != nil && (o.Remove || o.InPlace) {
		c.oldMember = s.memberOf(stored, storedIdentity, o.At)
	}
	if o.Forward != nil {
		c.forward = o.Forward
		c.fwdTTL = ttl(o.Forward.ExpiresAt().Sub(u.Now), 0)
	}
	if o.Write == nil {
		return c
	}
	c.rec, c.target, c.identity = o.Write, o.WriteAt, o.Identity
	c.inPlace, c.set, c.del = o.InPlace, o.Set, o.Del
	c.newMember = s.memberOf(c.rec, c.identity, c.target)
	if c.newMember == c.oldMember {
		c.oldMember = member{} // in place already
	} else {
		c.addMember = c.newMember.set != ""
	}
	c.ttl = ttl(c.rec.ExpiresAt().Sub(u.Now), 0)
	c.setTTL = ttl(c.rec.AbsoluteDeadline.Sub(u.Now), identityTTLMargin)
	return c
}

// memberOf is the identity set entry of rec stored under hash and indexed
// under identity, if it has one.
func (s *Store) memberOf(rec *session.Record, identity string, hash session.Hash) member {
	v, ok := rec.Values[identity]
	if identity == "" || !ok {
		return member{}
	}
	return member{set: s.IdentityKey(identity, v), hash: hash}
}

// maxTTL caps TTLs: a timeout absurd enough to overflow a Duration still
// makes a TTL that Redis takes.
const maxTTL = 100 * 365 * 24 * time.Hour

// ttl is d plus margin, rounded up to whole milliseconds, Redis's finest
// TTL, so that Redis never drops a record before its deadline. A record
// whose deadline has come gets the shortest TTL rather than none.
func ttl(d, margin time.Duration) time.Duration {
	if d >= maxTTL-margin {
		return maxTTL
	}
	d += margin
	if d < time.Millisecond {
		return time.Millisecond
	}
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// addIdentity adds a member to an identity set and extends the set's TTL
// to at least ARGV[2] milliseconds, in one step, so that the set outlives
// each of its members. (PEXPIRE's GT option would do, but needs Redis 7.)
var addIdentity = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`)

// compareAndSet writes the session hash KEYS[1] if its ":rev" is still
// ARGV[1] ("" for a key that does not exist), and returns 1; otherwise it
// returns 0 and writes nothing. ARGV[2] is what to do: "del" deletes the
// key, "patch" sets and deletes fields, "replace" deletes the key first.
// ARGV[3] is the TTL in milliseconds, ARGV[4] the number of fields to set,
// followed by them as field, value pairs, then the number of fields to
// delete and their names. Every write increments ":rev".
var compareAndSet = goredis.NewScript(`
local rev = redis.call('HGET', KEYS[1], ':rev') or ''
if rev ~= ARGV[1] then
	return 0
end
if ARGV[2] == 'del' then
	redis.call('DEL', KEYS[1])
	return 1
end
if ARGV[2] == 'replace' then
	redis.call('DEL', KEYS[1])
end
local i = 5
for _ = 1, tonumber(ARGV[4]) do
	redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
	i = i + 2
end
local n = tonumber(ARGV[i])
for j = 1, n do
	redis.call('HDEL', KEYS[1], ARGV[i + j])
end
redis.call('HSET', KEYS[1], ':rev', (tonumber(rev) or 0) + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// write makes the writes of c. tx is the transaction watching the session
// under c.old on a single server, or nil.
//
// On a single server everything goes into one MULTI. On Cluster the steps
// are separate, in an order that never loses a session; see the package
// documentation.
func (s *Store) write(ctx context.Context, tx *goredis.Tx, c *change) error {
	if s.cluster {
		return s.writeCluster(ctx, c)
	}
	queue := func(p goredis.Pipeliner) error {
		s.addIndex(ctx, p, c)
		s.writeTarget(ctx, p, c)
		s.writeOld(ctx, p, c)
		s.removeIndex(ctx, p, c)
		return nil
	}
	var err error
	if tx != nil {
		_, err = tx.TxPipelined(ctx, queue)
	} else {
		_, err = s.client.TxPipelined(ctx, queue)
	}
	if err != nil && !errors.Is(err, goredis.TxFailedErr) {
		err = redisError("writing session "+c.subject(), err)
	}
	return err
}

// writeCluster makes the writes of c on Cluster, in steps.
func (s *Store) writeCluster(ctx context.Context, c *change) error {
	// 1: add index entries, so that no session exists unindexed.
	if _, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.addIndex(ctx, p, c)
		return nil
	}); err != nil {
		return redisError("indexing session "+c.subject(), err)
	}
	// 2: write the new key, before the old one goes.
	wroteTarget := false
	if c.rec != nil && !c.inPlace && (!c.hasOld || c.target != c.old) {
		_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			s.writeTarget(ctx, p, c)
			return nil
		})
		if err != nil {
			return redisError("writing session "+c.subject(), err)
		}
		wroteTarget = c.hasOld
	}
	// 3: change or delete the old key, if nobody changed it since it was
	// read.
	if args := s.casArgs(c); args != nil {
		ok, err := compareAndSet.Run(ctx, s.client, []string{s.SessionKey(c.old)}, args...).Int()
		if err == nil && ok == 0 {
			if wroteTarget {
				// Nobody was given the copy's ID: it goes.
				s.undoTarget(ctx, c)
			}
			return errConflict
		}
		if err != nil {
			// Not undone: the script may have run with only its answer
			// lost, and then the copy is the session.
			return redisError("writing session "+c.old.Short(), err)
		}
	}
	// 4: remove the entries that are stale now, and add the new ones
	// again in case a cleanup took them while the key did not exist yet.
	// The session is written: a failure here leaves stale entries, which
	// readers skip, so it is reported but is not the write's error.
	if _, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.removeIndex(ctx, p, c)
		s.addIndex(ctx, p, c)
		return nil
	}); err != nil {
		s.onIndex(redisError("updating the indexes of session "+c.subject(), err))
		return nil
	}
	// An identity entry was removed from a session that is still there
	// (renamed, or found not to belong): if another request has named it
	// that identity since, the entry must stay. A session that moved or
	// went has no session under the old hash (at most a forward record,
	// never indexed), and a hash is never used again.
	if c.oldMember.set != "" && (!c.removeOld || c.rec != nil && c.target == c.old) {
		s.restoreIdentity(ctx, c.oldMember)
	}
	return nil
}

// casArgs are the compareAndSet arguments of the Cluster write to the
// session under c.old, or nil if there is none.
func (s *Store) casArgs(c *change) []any {
	if !c.hasOld {
		return nil
	}
	var set []any
	var del []string
	op, keyTTL := "patch", c.ttl
	switch {
	case c.inPlace:
		set, del = s.patchFields(c)
	case c.rec != nil && c.target == c.old:
		op = "replace"
		set = encode(c.rec, c.identity)
	case c.forward != nil:
		op, keyTTL = "replace", c.fwdTTL
		set = encode(c.forward, "")
	case c.removeOld:
		op = "del"
	default:
		return nil
	}
	args := []any{c.rev, op, keyTTL.Milliseconds(), len(set) / 2}
	args = append(args, set...)
	args = append(args, len(del))
	for _, f := range del {
		args = append(args, f)
	}
	return args
}

// patchFields are the fields an update in place sets, as field, value
// pairs, and those it deletes: the keys that changed and the metadata that
// moved, never the whole record.
func (s *Store) patchFields(c *change) (set []any, del []string) {
	set = make([]any, 0, 2*(len(c.set)+4))
	for _, k := range c.set {
		set = append(set, k, c.rec.Values[k])
	}
	set = append(set,
		fieldSeen, nanos(c.rec.LastSeen),
		fieldIdle, nanos(c.rec.IdleDeadline))
	del = slices.Clip(c.del)
	if c.identity != "" {
		set = append(set, fieldIdentity, c.identity)
	} else {
		del = append(del, fieldIdentity)
	}
	// The realm is stamped on every write: a record of none (stored
	// before realms) takes the writer's.
	if c.rec.Realm != "" {
		set = append(set, fieldRealm, c.rec.Realm)
	} else {
		del = append(del, fieldRealm)
	}
	return set, del
}

// addIndex queues the index entries the record needs under its target.
func (s *Store) addIndex(ctx context.Context, p goredis.Pipeliner, c *change) {
	if c.rec == nil {
		return
	}
	if !c.inPlace {
		p.ZAdd(ctx, s.IndexKey(), goredis.Z{Member: c.target.String()})
	}
	if c.addMember {
		addIdentity.Eval(ctx, p, []string{c.newMember.set},
			c.target.String(), c.setTTL.Milliseconds())
	}
}

// writeTarget queues the writes of the whole record under its target key:
// a new session, or one moved there.
func (s *Store) writeTarget(ctx context.Context, p goredis.Pipeliner, c *change) {
	if c.rec == nil || c.inPlace {
		return
	}
	key := s.SessionKey(c.target)
	// A record already under the target is replaced, not merged into.
	p.Del(ctx, key)
	p.HSet(ctx, key, append(encode(c.rec, c.identity), fieldRev, 1)...)
	p.PExpire(ctx, key, c.ttl)
}

// writeOld queues the writes to the key the update read, on a single
// server: the per-key patch of an update in place, or its deletion, and
// the forward record that replaces a session that moved. The WATCH on the
// key guards them; a forward record's ":rev" starts again at 1.
func (s *Store) writeOld(ctx context.Context, p goredis.Pipeliner, c *change) {
	key := s.SessionKey(c.old)
	switch {
	case c.inPlace:
		set, del := s.patchFields(c)
		p.HSet(ctx, key, set...)
		if len(del) > 0 {
			p.HDel(ctx, key, del...)
		}
		p.HIncrBy(ctx, key, fieldRev, 1)
		p.PExpire(ctx, key, c.ttl)
	case c.removeOld && (c.rec == nil || c.target != c.old):
		p.Del(ctx, key)
		if c.forward != nil {
			p.HSet(ctx, key, append(encode(c.forward, ""), fieldRev, 1)...)
			p.PExpire(ctx, key, c.fwdTTL)
		}
	}
}

// removeIndex queues the removal of the index entries that the change
// made stale.
func (s *Store) removeIndex(ctx context.Context, p goredis.Pipeliner, c *change) {
	if c.oldExists && c.removeOld && (c.rec == nil || c.target != c.old) {
		p.ZRem(ctx, s.IndexKey(), c.old.String())
	}
	if c.oldMember.set != "" {
		p.SRem(ctx, c.oldMember.set, c.old.String())
	}
}

// undoTarget deletes the key a Cluster rotation wrote before its write to
// the old key was refused: nobody was given its ID. Its index entries go
// stale and are cleaned up by readers.
func (s *Store) undoTarget(ctx context.Context, c *change) {
	if err := s.client.Del(ctx, s.SessionKey(c.target)).Err(); err != nil {
		s.onIndex(redisError("removing the unfinished copy of session "+c.target.Short(), err))
	}
}

// probe checks a few index entries after a random point and removes those
// whose session is gone, so that the index of all sessions, whose members
// Redis cannot expire, stays about the size of the live sessions without
// a sweeper. It is housekeeping: its errors are reported, not returned.
func (s *Store) probe(ctx context.Context) {
	start := fmt.Sprintf("[%04x", rand.IntN(1<<16))
	hashes, err := s.client.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: s.IndexKey(), ByLex: true, Start: start, Stop: "+", Count: probeSize,
	}).Result()
	if err == nil && len(hashes) < probeSize {
		// Wrap around to the start, so that every entry is as likely to
		// be checked.
		var more []string
		more, err = s.client.ZRangeArgs(ctx, goredis.ZRangeArgs{
			Key: s.IndexKey(), ByLex: true, Start: "-", Stop: "(" + start[1:], Count: int64(probeSize - len(hashes)),
		}).Result()
		hashes = append(hashes, more...)
	}
	if err == nil {
		_, err = s.liveOrClean(ctx, hashes, readExists)
	}
	if err != nil {
		s.onIndex(redisError("cleaning the session index", err))
	}
}

// A read is what liveOrClean reads of each session: the fields, or all if
// nil, and how they make a record.
type read struct {
	fields []string
	decode func(map[string]string) (*session.Record, error)
}

var (
	readAll = read{decode: func(f map[string]string) (*session.Record, error) {
		rec, _, err := decode(f)
		return rec, err
	}}
	readDeadlines = read{fields: []string{fieldIdle, fieldAbsolute, fieldNext}, decode: decodeDeadlines}
	readExists    = read{fields: []string{fieldVersion}, decode: func(map[string]string) (*session.Record, error) {
		return &session.Record{}, nil
	}}
)

// liveOrClean reads the sessions of hashes, index members in hex, removes
// from the index those whose key is gone, and returns the records of the
// others in order (nil for a member that is not a hash), as what says.
func (s *Store) liveOrClean(ctx context.Context, hashes []string, what read) ([]*session.Record, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	type cmds struct {
		all  *goredis.MapStringStringCmd
		some *goredis.SliceCmd
	}
	reads := make([]cmds, len(hashes))
	parsed := make([]session.Hash, len(hashes))
	bad := make([]bool, len(hashes))
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, m := range hashes {
			h, err := session.ParseHash(m)
			if err != nil {
				bad[i] = true
				continue
			}
			parsed[i] = h
			if what.fields == nil {
				reads[i].all = p.HGetAll(ctx, s.SessionKey(h))
			} else {
				reads[i].some = p.HMGet(ctx, s.SessionKey(h), what.fields...)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, redisError("reading sessions", err)
	}
	recs := make([]*session.Record, len(hashes))
	var gone []any
	for i := range hashes {
		if bad[i] {
			gone = append(gone, hashes[i])
			continue
		}
		var fields map[string]string
		if what.fields == nil {
			fields = reads[i].all.Val()
		} else {
			fields = map[string]string{}
			for j, v := range reads[i].some.Val() {
				if v, ok := v.(string); ok {
					fields[what.fields[j]] = v
				}
			}
		}
		if len(fields) == 0 {
			gone = append(gone, hashes[i])
			continue
		}
		rec, err := what.decode(fields)
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", parsed[i].Short(), err)
		}
		recs[i] = rec
	}
	s.dropStale(ctx, gone)
	return recs, nil
}

// dropStale removes index entries whose session key was found missing.
// A session hash is never used again, so such an entry is stale for good,
// with one exception: on Cluster an entry is added just before its key is
// written. So each entry is checked again after its removal and put back
// if its key exists by then; with the writer adding its entry again after
// the key, whichever order the two run in, the entry of a written session
// stays.
func (s *Store) dropStale(ctx context.Context, hashes []any) {
	if len(hashes) == 0 {
		return
	}
	err := s.client.ZRem(ctx, s.IndexKey(), hashes...).Err()
	if err == nil {
		exists := make([]*goredis.IntCmd, len(hashes))
		_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, m := range hashes {
				if h, err := session.ParseHash(m.(string)); err == nil {
					exists[i] = p.Exists(ctx, s.SessionKey(h))
				}
			}
			return nil
		})
		for i, cmd := range exists {
			if err == nil && cmd != nil && cmd.Val() > 0 {
				err = s.client.ZAdd(ctx, s.IndexKey(), goredis.Z{Member: hashes[i]}).Err()
			}
		}
	}
	if err != nil {
		s.onIndex(redisError("cleaning the session index", err))
	}
}

// restoreIdentity puts m back into its identity set if the session it
// names belongs there: the counterpart of dropStale for identity sets, for
// the removals that on Cluster cannot be in one transaction with the
// session they check.
func (s *Store) restoreIdentity(ctx context.Context, m member) {
	fields, err := s.client.HGetAll(ctx, s.SessionKey(m.hash)).Result()
	if err == nil && len(fields) > 0 {
		rec, identity, derr := decode(fields)
		if derr != nil || s.memberOf(rec, identity, m.hash) != m {
			return
		}
		// The set's TTL from the time the record was last written, which
		// is no later than now: long enough.
		setTTL := ttl(rec.AbsoluteDeadline.Sub(rec.LastSeen), identityTTLMargin)
		err = addIdentity.Eval(ctx, s.client, []string{m.set}, m.hash.String(), setTTL.Milliseconds()).Err()
	}
	if err != nil {
		s.onIndex(redisError("checking the identity index of session "+m.hash.Short(), err))
	}
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, hash session.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var missing bool
	_, err := s.modify(ctx, hash, func(fields map[string]string) (*change, error) {
		// A forward record is no session: it stays until its TTL.
		_, forward := fields[fieldNext]
		missing = len(fields) == 0 || forward
		if missing {
			return nil, nil
		}
		c := &change{old: hash, hasOld: true, oldExists: true, removeOld: true}
		// A record too corrupt to read is deleted all the same: this is
		// the way out of it. Its identity entry, unknown, is left for
		// DeleteByIdentity or the set's TTL to clear.
		if rec, identity, err := decode(fields); err == nil {
			c.oldMember = s.memberOf(rec, identity, hash)
		}
		return c, nil
	})
	if err == nil && missing {
		return store.ErrNotFound
	}
	return err
}

// DeleteByIdentity implements store.Store. It reads the identity set and
// deletes each member whose session still belongs to the identity; the
// record, not the set, says whose session it is. Members whose session
// is gone or belongs to someone else now are removed from the set.
func (s *Store) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if key == "" {
		// Nothing is indexed under an empty identity key.
		return 0, nil
	}
	setKey := s.IdentityKey(key, value)
	members, err := s.client.SMembers(ctx, setKey).Result()
	if err != nil {
		return 0, redisError("reading the sessions of an identity", err)
	}
	n := 0
	for _, m := range members {
		hash, err := session.ParseHash(m)
		if err != nil {
			if err := s.client.SRem(ctx, setKey, m).Err(); err != nil {
				return n, redisError("cleaning the sessions of an identity", err)
			}
			continue
		}
		deleted, err := s.deleteIfOwned(ctx, hash, realm, key, value, setKey)
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// deleteIfOwned deletes the session under hash if its identity key is key
// with value and it is of realm or of none, and removes hash from the
// identity set unless the session belongs there (another realm's).
func (s *Store) deleteIfOwned(ctx context.Context, hash session.Hash, realm, key, value, setKey string) (bool, error) {
	var deleted bool
	_, err := s.modify(ctx, hash, func(fields map[string]string) (*change, error) {
		var indexed bool
		deleted, indexed = owns(fields, realm, key, value)
		c := &change{old: hash, hasOld: true, oldExists: deleted, removeOld: deleted}
		if !indexed || deleted {
			// This record's entry, or a stale one.
			c.oldMember = member{set: setKey, hash: hash}
		}
		return c, nil
	})
	return deleted && err == nil, err
}

// owns tells whether the session of fields belongs to the identity key
// with value (indexed), and whether it is to be deleted for a revocation
// in realm: it is of realm or of none. The record, not the set, says whose
// session it is. A record too corrupt to read is deleted: it is listed
// under the identity, and a "log out everywhere" must not leave it behind.
func owns(fields map[string]string, realm, key, value string) (deleted, indexed bool) {
	if len(fields) == 0 {
		return false, false
	}
	rec, identity, err := decode(fields)
	if err != nil {
		return true, true
	}
	v, ok := rec.Values[key]
	indexed = identity == key && ok && v == value && !rec.Forwarded()
	return indexed && (rec.Realm == "" || rec.Realm == realm), indexed
}

// List implements store.Store. The cursor is the hex hash of the last
// session of the previous page. It reads the index of all sessions in hash
// order and the sessions it names, skipping those that have expired at now
// and removing the entries of those that Redis has expired.
func (s *Store) List(ctx context.Context, cursor string, limit int, now time.Time) ([]store.Entry, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("a session list needs a positive limit, not %d", limit)
	}
	start := "-"
	if cursor != "" {
		if _, err := session.ParseHash(cursor); err != nil {
			return nil, "", fmt.Errorf("bad session list cursor %q: pass back the cursor a list returned", cursor)
		}
		start = "(" + cursor
	}
	var entries []store.Entry
	batch := min(limit+1, listBatch)
	for {
		hashes, err := s.client.ZRangeArgs(ctx, goredis.ZRangeArgs{
			Key: s.IndexKey(), ByLex: true, Start: start, Stop: "+", Count: int64(batch),
		}).Result()
		if err != nil {
			return nil, "", redisError("listing sessions", err)
		}
		recs, err := s.liveOrClean(ctx, hashes, readAll)
		if err != nil {
			return nil, "", err
		}
		for i, rec := range recs {
			if rec == nil || rec.Expired(now) || rec.Forwarded() {
				continue
			}
			if len(entries) == limit {
				// Another live session follows: there is a next page.
				return entries, entries[len(entries)-1].Hash.String(), nil
			}
			h, _ := session.ParseHash(hashes[i])
			entries = append(entries, store.Entry{Hash: h, Record: rec})
		}
		if len(hashes) < batch {
			return entries, "", nil
		}
		start = "(" + hashes[len(hashes)-1]
	}
}

// Count implements store.Store. It reads the deadlines of every session in
// the index, a batch at a time: its cost grows with the number of sessions.
func (s *Store) Count(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	start := "-"
	for {
		hashes, err := s.client.ZRangeArgs(ctx, goredis.ZRangeArgs{
			Key: s.IndexKey(), ByLex: true, Start: start, Stop: "+", Count: listBatch,
		}).Result()
		if err != nil {
			return 0, redisError("counting sessions", err)
		}
		recs, err := s.liveOrClean(ctx, hashes, readDeadlines)
		if err != nil {
			return 0, err
		}
		for _, rec := range recs {
			if rec != nil && !rec.Expired(now) && !rec.Forwarded() {
				n++
			}
		}
		if len(hashes) < listBatch {
			return n, nil
		}
		start = "(" + hashes[len(hashes)-1]
	}
}
