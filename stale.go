package caddysession

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// staleCopy keeps the sessions this process read from one store, for
// `on_store_error stale`: while the store is unreachable, a session read
// within the policy's duration is served from here. It is the plugin's
// own copy, not the Redis client's tracked cache, which is dropped with
// the connection it was tracked on.
//
// What this process learns of a session's end (a logout, a rotation, a
// revocation, a load that found it gone) takes it out and leaves a
// tombstone, so that a copy read before, by a request still in flight,
// cannot bring it back. What other instances end, this one learns only
// from the store: for at most the policy's duration, while the store is
// down, such a session is still served.
//
// It is shared by every handler of the store in the process, across
// reloads (a caddy.UsagePool keyed by the store's name), so that a
// revocation made through any handler reaches them all, and so that the
// admin API, which acts through the wrappers of all the handlers of the
// store (liveStore), tombstones a session once for every one of them.
type staleCopy struct {
	mu sync.Mutex
	// Two generations of each map, as touchFilter's: cur is filled, old
	// is what cur was when it was replaced, every `within`, so that an
	// entry lives between one and two generations and the maps stay
	// bounded without a sweep.
	cur, old staleGeneration
	rotated  time.Time
	within   time.Duration // the longest duration of the handlers that share it
	// seq counts the tombstones ever made, so that a read can tell one
	// made after it began from one made before (reading).
	seq uint64
	// floor stands for the tombstones of sessions dropped when a
	// generation held too many (ended): the latest time and seq among
	// them. keep refuses what a read that began before it brought, as
	// each of them would have; latest is the latest time of any
	// tombstone so far, which floor takes. A generation full of
	// tombstones of users sets it too.
	floor  tombstone
	latest time.Time
}

// tombstone is when a session, or a user's sessions, ended: at, the time
// of the request that ended it, and seq, its place among the copy's
// tombstones.
type tombstone struct {
	at  time.Time
	seq uint64
}

// staleGeneration is one generation of a staleCopy.
type staleGeneration struct {
	records map[session.Hash]staleRecord
	ended   map[session.Hash]tombstone // tombstones of sessions
	users   map[staleUser]tombstone    // tombstones of every session of a user, in any realm
}

// staleRecord is a session as a load or a write left it, when, and
// the copy's seq when that read or write began.
type staleRecord struct {
	rec  *session.Record
	at   time.Time
	read uint64
}

// staleUser names the sessions of one user, as DeleteByIdentity does but
// in every realm of the store: a record of no realm is one of every
// realm's, and forgetting more than was revoked is safe.
type staleUser struct{ key, value string }

// maxStaleRecords bounds each generation of a copy: past it, newly read
// sessions are not kept (the oldest are in the generation before).
const maxStaleRecords = 1 << 16

// maxStaleTombstones bounds the tombstones of a generation. Past it the
// copy drops the tombstones of sessions for a floor (staleCopy.floor),
// and, for tombstones of users, forgets every session it holds: serving
// less is safe, serving an ended session is not.
const maxStaleTombstones = 1 << 16

func newGeneration() staleGeneration {
	return staleGeneration{
		records: map[session.Hash]staleRecord{},
		ended:   map[session.Hash]tombstone{},
		users:   map[staleUser]tombstone{},
	}
}

// staleCopies holds one staleCopy per store name.
var staleCopies = caddy.NewUsagePool()

// staleSlots holds, for every store name ever configured, the copy of the
// store while a handler holds one (nil otherwise), so that the handlers
// of the store without the policy find it to tombstone the sessions they
// end (staleTeller). staleMu serialises holds and releases, so that a
// slot never keeps a copy its last holder let go of, nor loses one a new
// holder just took.
var (
	staleMu    sync.Mutex
	staleSlots = map[string]*atomic.Pointer[staleCopy]{}
)

// staleSlotFor returns the slot of the store named storeName; staleMu is
// held.
func staleSlotFor(storeName string) *atomic.Pointer[staleCopy] {
	slot, ok := staleSlots[storeName]
	if !ok {
		slot = new(atomic.Pointer[staleCopy])
		staleSlots[storeName] = slot
	}
	return slot
}

// staleCopyDestructor lets a staleCopy live in a UsagePool.
type staleCopyDestructor struct{ *staleCopy }

func (staleCopyDestructor) Destruct() error { return nil }

// holdStaleCopy returns the copy of the store named storeName, which the
// caller must release with releaseStaleCopy, and makes it keep sessions
// at least within.
func holdStaleCopy(storeName string, within time.Duration) *staleCopy {
	staleMu.Lock()
	val, _, _ := staleCopies.LoadOrNew(storeName, func() (caddy.Destructor, error) {
		return staleCopyDestructor{&staleCopy{cur: newGeneration(), old: newGeneration()}}, nil
	})
	c := val.(staleCopyDestructor).staleCopy
	staleSlotFor(storeName).Store(c)
	staleMu.Unlock()
	c.mu.Lock()
	c.within = max(c.within, within)
	c.mu.Unlock()
	return c
}

func releaseStaleCopy(storeName string) {
	staleMu.Lock()
	defer staleMu.Unlock()
	if deleted, _ := staleCopies.Delete(storeName); deleted {
		staleSlotFor(storeName).Store(nil)
	}
}

// rotate starts a new generation when the current one is older than
// within; c.mu is held.
func (c *staleCopy) rotate(now time.Time) {
	if now.Sub(c.rotated) >= c.within || now.Before(c.rotated) {
		c.old, c.cur, c.rotated = c.cur, newGeneration(), now
	}
}

// keep records rec as the session under hash at now, unless it ended.
func (c *staleCopy) keep(hash session.Hash, rec *session.Record, identity string, now time.Time, read uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	// A tombstone since now, or made since the read began, is a logout by
	// another request that the read may have come before: its copy must
	// not come back.
	if c.endedSince(hash, rec, identity, now, read) || c.floor.after(now, read) || len(c.cur.records) >= maxStaleRecords {
		return
	}
	c.cur.records[hash] = staleRecord{rec: rec, at: now, read: read}
}

// reading returns what a read or write of the store that begins now
// passes to keep: the count of tombstones so far. A request that started
// before another's, and ended the session while that one's read was on
// its way, stamps its tombstone with the earlier time; the count still
// says it came after the read began.
func (c *staleCopy) reading() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// get returns the copy of the session under hash if it was read or
// written within the duration before now, has not ended since, and has
// not expired by its deadlines and the timeouts t.
func (c *staleCopy) get(hash session.Hash, identity string, t session.Timeouts, within time.Duration, now time.Time) (*session.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept, ok := c.cur.records[hash]
	if !ok {
		kept, ok = c.old.records[hash]
	}
	switch {
	case !ok, now.Sub(kept.at) > within, t.Expired(kept.rec, now),
		c.endedSince(hash, kept.rec, identity, kept.at, kept.read):
		return nil, false
	}
	return kept.rec, true
}

// endedSince reports whether a tombstone says the session under hash, or
// every session of its user, ended at or after since, or after a read
// that began when the copy's seq was read; c.mu is held.
func (c *staleCopy) endedSince(hash session.Hash, rec *session.Record, identity string, since time.Time, read uint64) bool {
	for _, g := range []*staleGeneration{&c.cur, &c.old} {
		if t, ok := g.ended[hash]; ok && t.after(since, read) {
			return true
		}
		if value, ok := rec.IndexedIdentity(identity); ok {
			if t, ok := g.users[staleUser{identity, value}]; ok && t.after(since, read) {
				return true
			}
		}
	}
	return false
}

// after reports whether the tombstone ends what a read that began when
// the copy's seq was read, for a request of time since, brought.
func (t tombstone) after(since time.Time, read uint64) bool {
	return !t.at.Before(since) || t.seq > read
}

// ended tombstones the session under hash at now.
//
// Every load that finds no session tombstones its hash, and a client
// chooses the IDs it presents, six a request: a generation full of
// tombstones of sessions is no sign of many sessions ended. So rather
// than forget every session held (as a generation full of tombstones of
// users does), the copy drops these tombstones for its floor. A tombstone
// of a session only keeps a read that began before it from keeping its
// copy (the copy it held, ended deletes at once); the floor keeps every
// such read from keeping anything.
func (c *staleCopy) ended(hash session.Hash, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	c.seq++
	if now.After(c.latest) {
		c.latest = now
	}
	if len(c.cur.ended) >= maxStaleTombstones {
		c.floor = tombstone{at: c.latest, seq: c.seq}
		c.cur.ended, c.old.ended = map[session.Hash]tombstone{}, map[session.Hash]tombstone{}
	}
	c.cur.ended[hash] = tombstone{at: now, seq: c.seq}
	delete(c.cur.records, hash)
	delete(c.old.records, hash)
}

// endedUser tombstones every session of a user at now.
func (c *staleCopy) endedUser(u staleUser, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	c.seq++
	if now.After(c.latest) {
		c.latest = now
	}
	if len(c.cur.users) >= maxStaleTombstones {
		// The copy must not serve a session of the user: without the
		// tombstone, it forgets them all, and the floor keeps reads in
		// flight from bringing any back. Only the app's and the admin
		// API's logouts everywhere and revocations make these.
		c.cur, c.old = newGeneration(), newGeneration()
		c.floor = tombstone{at: c.latest, seq: c.seq}
		return
	}
	c.cur.users[u] = tombstone{at: now, seq: c.seq}
}

// staleStore keeps a staleCopy up to date with what the handler's store
// answers: every session read or written is kept, every session that
// ends, moves to another ID or is found gone is tombstoned. It serves
// nothing from the copy itself; the handler does, by its policy.
type staleStore struct {
	store.Store
	copy     *staleCopy
	identity string
	now      func() time.Time
}

func (s *staleStore) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	read := s.copy.reading()
	rec, err := s.Store.Load(ctx, hash, now, t)
	if !s.copy.loaded(hash, rec, err, now) && err == nil {
		s.copy.keep(hash, rec, s.identity, now, read)
	}
	return rec, err
}

// loaded tombstones hash if a load of it at now found it gone (rec, err),
// and reports whether it did.
func (c *staleCopy) loaded(hash session.Hash, rec *session.Record, err error, now time.Time) bool {
	if errors.Is(err, store.ErrNotFound) || err == nil && rec.Forwarded() {
		c.ended(hash, now)
		return true
	}
	return false
}

func (s *staleStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	read := s.copy.reading()
	res, err := s.Store.Update(ctx, u)
	if s.copy.updated(u, res, err) && res.Record != nil {
		s.copy.keep(res.Hash, res.Record, s.identity, u.Now, read)
	}
	return res, err
}

// updated tombstones what the update u, which the store answered with
// res and err, ended or moved to another ID, or may have (a write that
// failed), and reports whether the store made it.
func (c *staleCopy) updated(u store.Update, res store.Result, err error) (made bool) {
	// An update stored but not acknowledged by enough replicas is made all
	// the same: the copy follows it.
	made = err == nil || errors.Is(err, store.ErrUnreplicated)
	if u.HasHash && (errors.Is(err, store.ErrNotFound) || made && (res.Record == nil || res.Hash != u.Hash)) {
		c.ended(u.Hash, u.Now) // ended, or moved to another ID
	}
	if made && res.Followed && (res.Record == nil || res.Hash != res.Acted) {
		// The update reached a successor through forward records (a
		// renewal while the request was in flight) and ended it or moved
		// it on: the copy may hold it, kept by the renewal's own write.
		c.ended(res.Acted, u.Now)
	}
	if u.HasHash && !made && changes(u) && !refused(err) {
		// A write that failed may have happened all the same (a timeout,
		// a connection lost after the call was sent): a logout, a key
		// taken away, a renewal the store has made. The copy as it was
		// before is no longer what the store holds: serving less is safe.
		c.ended(u.Hash, u.Now)
	}
	return made
}

// changes reports whether u may change what the copy of the session
// serves: commands of a response, or a new ID. A touch and the take or
// put-back of flash values (which the copy never serves) do not.
func changes(u store.Update) bool { return u.Patch != nil || u.NewHash != nil }

// refused reports whether err says the store made nothing of an update:
// the session moved on or broke a rule, which the store read before it
// wrote. It is a function of its own so that the errors.As target is
// only allocated for an error.
func refused(err error) bool {
	var ruleErr *session.RuleError
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrStale) ||
		errors.Is(err, store.ErrNeedsRotation) || errors.As(err, &ruleErr)
}

// Delete tombstones the session before the delete, since a delete that
// failed may have happened, and again after it, so that a read that began
// while it was on its way keeps no copy either.
func (s *staleStore) Delete(ctx context.Context, hash session.Hash) error {
	s.copy.ended(hash, s.now())
	defer func() { s.copy.ended(hash, s.now()) }()
	return s.Store.Delete(ctx, hash)
}

// DeleteByIdentity tombstones the user before the store's call, so that
// no copy of theirs is served while it runs (or after it failed, having
// ended some sessions), and again after it, failed or not: a request that
// read or renewed a session of the user while the call ran, after the
// first tombstone and before the store ended that session, kept it in the
// copy at a time the first tombstone does not cover. A login of the user
// meanwhile is forgotten with them; forgetting more than was revoked is
// safe.
func (s *staleStore) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	user := staleUser{key, value}
	s.copy.endedUser(user, s.now())
	defer func() { s.copy.endedUser(user, s.now()) }()
	return s.Store.DeleteByIdentity(ctx, realm, key, value)
}

// Import tombstones, before and after the store's call as Delete does,
// the sessions an import with Overwrite may replace: the copy held their
// values from before it (a role the import took away), and served them
// once the store failed. A read after the import keeps them again.
func (s *staleStore) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	if !imp.Overwrite {
		return s.Store.Import(ctx, imp) // no live session it holds changes
	}
	s.copy.endedEntries(imp.Entries, s.now())
	defer func() { s.copy.endedEntries(imp.Entries, s.now()) }()
	return s.Store.Import(ctx, imp)
}

// endedEntries tombstones the sessions of entries at now.
func (c *staleCopy) endedEntries(entries []store.Entry, now time.Time) {
	for _, e := range entries {
		c.ended(e.Hash, now)
	}
}

// staleTeller is the store of a handler without on_store_error stale. It
// keeps no copy, but another handler of the same store may: of another
// site, or of the config a reload brought in while a request of this
// one's was in flight. A session this handler ends (a logout, a logout
// everywhere, a renewal, a load that found it gone) must not be served
// from that copy once the store fails: through this handler the store
// ended it and the copy, told by no one, served it to the old cookie.
// It looks for the copy once the store has answered, not before: a
// reload that brought in a copy while the end was on its way to the
// store (a slow store) had the new config read the session into it
// before the end landed, and an end that found no copy before it left
// told none. With no copy held, it is the store, and one atomic load.
type staleTeller struct {
	store.Store
	slot *atomic.Pointer[staleCopy]
}

// tellsStaleCopy wraps st, a store of the handler, which keeps no stale
// copy, to tombstone the sessions it ends in the copy of the store, if a
// handler keeps one.
func (h *Handler) tellsStaleCopy(st store.Store) store.Store {
	staleMu.Lock()
	defer staleMu.Unlock()
	return staleTeller{Store: st, slot: staleSlotFor(h.storeName)}
}

func (t staleTeller) Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error) {
	rec, err := t.Store.Load(ctx, hash, now, timeouts)
	if c := t.slot.Load(); c != nil {
		c.loaded(hash, rec, err, now)
	}
	return rec, err
}

func (t staleTeller) Update(ctx context.Context, u store.Update) (store.Result, error) {
	res, err := t.Store.Update(ctx, u)
	if c := t.slot.Load(); c != nil {
		if c.updated(u, res, err) && changes(u) && res.Record != nil && res.Hash == res.Acted {
			// The session stands where it was, with the response's
			// changes (a role taken away), which this handler keeps in no
			// copy: the one the copy holds is from before them, and must
			// not be served once the store fails. The next read through
			// the handler that keeps the copy keeps the session anew.
			c.ended(res.Hash, u.Now)
		}
	}
	return res, err
}

// Delete tombstones before and after the delete, as staleStore does, in
// the copy held at each moment.
func (t staleTeller) Delete(ctx context.Context, hash session.Hash) error {
	if c := t.slot.Load(); c != nil {
		c.ended(hash, clock.Now())
	}
	defer func() {
		if c := t.slot.Load(); c != nil {
			c.ended(hash, clock.Now())
		}
	}()
	return t.Store.Delete(ctx, hash)
}

// DeleteByIdentity tombstones the user before and after the call, as
// staleStore does, in the copy held at each moment.
func (t staleTeller) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	user := staleUser{key, value}
	if c := t.slot.Load(); c != nil {
		c.endedUser(user, clock.Now())
	}
	defer func() {
		if c := t.slot.Load(); c != nil {
			c.endedUser(user, clock.Now())
		}
	}()
	return t.Store.DeleteByIdentity(ctx, realm, key, value)
}

// Import tombstones what an import with Overwrite may replace, as
// staleStore does, in the copy held at each moment.
func (t staleTeller) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	if !imp.Overwrite {
		return t.Store.Import(ctx, imp)
	}
	if c := t.slot.Load(); c != nil {
		c.endedEntries(imp.Entries, clock.Now())
	}
	defer func() {
		if c := t.slot.Load(); c != nil {
			c.endedEntries(imp.Entries, clock.Now())
		}
	}()
	return t.Store.Import(ctx, imp)
}
