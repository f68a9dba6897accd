package redis

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// change is what one write does: the execution of a store.Outcome, or of
// a Delete, in Redis's terms.
type change struct {
	o   store.Outcome // the outcome executed, whose Result and Err Update returns
	now time.Time

	old       session.Hash
	guarded   bool   // old was read, and its ":rev" is compared before it is written
	rev       string // the ":rev" of the session read under old
	oldExists bool   // a record (live or expired) was stored under old
	removeOld bool   // delete the key under old

	forward *session.Record // the forward record to write under old, if any
	fwdTTL  time.Duration

	rec      *session.Record // the record as it now stands, nil if none
	target   session.Hash
	inPlace  bool     // patch the record under old, which is target
	set      []string // in place: the session keys set
	del      []string // in place: the session keys deleted
	metaSet  []string // in place: the metadata fields set, as field, value pairs
	metaDel  []string // in place: the metadata fields deleted
	identity string   // the identity key the record is indexed under
	ttl      time.Duration

	oldEntry entry // the index entry to remove
	newEntry entry // the record's index entry, to add or move
	moved    bool  // newEntry is the entry read, with a new score
	// kept: newEntry is the entry read, score and all, as in a write that
	// does not touch (a flash value taken or put back).
	kept bool
	// reindex: an earlier attempt of the update was refused (errConflict),
	// and on Cluster may have left its own score in the index (step 1 of
	// writeCluster runs before the guarded write): this attempt writes the
	// entry of the record it read even when it keeps it, or writes
	// nothing else. stored and storedIdentity are that record.
	reindex        bool
	stored         *session.Record
	storedIdentity string
}

// reassert makes c, an attempt after a refused one, write the index entry
// of what it read: the score a refused attempt put in the index is not
// the session's, and an attempt that keeps the entry, or writes nothing
// (a touch that a newer one made moot, a flash take that finds none),
// would leave it there.
func (s *Store) reassert(c *change) {
	c.reindex = true
	if c.o.Writes() || c.o.Next != nil || c.stored == nil {
		return
	}
	c.newEntry = s.entryOf(c.stored, c.storedIdentity, c.old)
	c.kept, c.moved = true, true
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
	return c == nil || c.rec == nil && !c.removeOld && c.oldEntry.none() && c.newEntry.none() && c.forward == nil
}

// moves reports whether the change starts, ends or moves a session: the
// writes that wait for replicas when asked to.
func (c *change) moves() bool {
	return c.removeOld || c.forward != nil || c.rec != nil && !c.inPlace
}

// writesTarget reports whether the whole record is written under target,
// as a new key (not the one read).
func (c *change) writesTarget() bool {
	return c.rec != nil && !c.inPlace && (!c.guarded || c.target != c.old)
}

// plan works out the writes of o, decided on stored, the record read
// under o.At (nil if none) and indexed under storedIdentity.
func (s *Store) plan(u store.Update, o store.Outcome, stored *session.Record, storedIdentity string) *change {
	c := &change{o: o, old: o.At, now: u.Now, stored: stored, storedIdentity: storedIdentity}
	if !o.Writes() {
		return c
	}
	c.oldExists = stored != nil
	c.removeOld = o.Remove
	if stored != nil && (o.Remove || o.InPlace) {
		c.oldEntry = s.entryOf(stored, storedIdentity, o.At)
	}
	if o.Forward != nil {
		c.forward = o.Forward
		c.fwdTTL = ttl(o.Forward.ExpiresAt().Sub(u.Committed()), 0) // written now, not when the request began
	}
	if o.Write == nil {
		return c
	}
	c.rec, c.target, c.identity = o.Write, o.WriteAt, o.Identity
	c.inPlace, c.set, c.del = o.InPlace, o.Set, o.Del
	if c.inPlace && stored != nil {
		c.metaSet, c.metaDel = metaChanges(stored, c.rec)
	}
	c.newEntry = s.entryOf(c.rec, c.identity, c.target)
	if c.newEntry.bucket == c.oldEntry.bucket && c.newEntry.member == c.oldEntry.member {
		c.kept = c.newEntry.score == c.oldEntry.score
		c.oldEntry, c.moved = entry{}, true // the new score replaces the old one
	}
	// Redis keeps the key store.ExpiryGrace past the deadline, for the
	// requests in flight across it; Load judges the deadline itself.
	c.ttl = ttl(c.rec.ExpiresAt().Sub(u.Now), store.ExpiryGrace)
	return c
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

func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// write makes the writes of c, and drops the keys it wrote from the
// cache. It returns errConflict, having written nothing, if the session
// under c.old changed since it was read.
func (s *Store) write(ctx context.Context, c *change) error {
	// The client says whether it is a cluster's: connect first.
	if _, err := s.Client(); err != nil {
		return redisError("writing session "+c.subject(), err)
	}
	s.mu.Lock()
	cluster := s.cluster
	s.mu.Unlock()
	defer s.invalidate(c)
	if cluster {
		return s.writeCluster(ctx, c)
	}
	p := newOps()
	if c.guarded {
		p.guard(s.SessionKey(c.old), c.rev)
	}
	s.addEntry(p, c, false)
	s.writeTarget(p, c)
	s.writeOld(p, c)
	s.removeEntry(p, c)
	ok, err := s.run(ctx, p, s.replicasFor(c))
	if err != nil {
		return redisError("writing session "+c.subject(), err)
	}
	if !ok {
		return errConflict
	}
	return nil
}

// replicasFor is how many replicas the writes of c wait for.
func (s *Store) replicasFor(c *change) int {
	if c.moves() {
		return s.wait
	}
	return 0
}

// invalidate drops the session keys c wrote from the cache.
func (s *Store) invalidate(c *change) {
	if s.cache == nil {
		return
	}
	if c.guarded {
		s.cache.Invalidate(s.SessionKey(c.old))
	}
	if c.rec != nil && c.target != c.old {
		s.cache.Invalidate(s.SessionKey(c.target))
	}
}

// addEntry adds the record's index entry, or moves its score, and drops
// the bucket's long-expired entries. On Cluster, where this runs apart
// from the session's own write, a score is moved only if the entry is
// still there (ZADD XX): a rotation or logout that removed it since must
// not see it come back. On a single server it is all one script, and a
// plain ZADD also puts back an entry that was lost.
//
// On Cluster an entry the change keeps as it was read is not written at
// all: the score it would set again is the one read, and if the session's
// write is then refused because another writer moved the score since, a
// retry that writes nothing (a flash value already taken, or set anew)
// would leave the older score in the index.
func (s *Store) addEntry(p *ops, c *change, onlyIfThere bool) {
	if c.newEntry.none() || onlyIfThere && c.kept && !c.reindex {
		return
	}
	op := "Z"
	if onlyIfThere && c.moved {
		op = "U"
	}
	p.op(op, c.newEntry.bucket, c.newEntry.score, c.newEntry.member)
	p.op("C", c.newEntry.bucket, micros(c.now.Add(-expiredMargin)))
}

// removeEntry removes the index entry the change made stale.
func (s *Store) removeEntry(p *ops, c *change) {
	if !c.oldEntry.none() {
		p.op("z", c.oldEntry.bucket, c.oldEntry.member)
	}
}

// writeTarget writes the whole record under its target: a new session,
// or one moved there. A record already there is replaced, not merged into.
func (s *Store) writeTarget(p *ops, c *change) {
	if !c.writesTarget() {
		return
	}
	key := s.SessionKey(c.target)
	p.op("D", key)
	p.hset(key, append(encode(c.rec, c.identity), fieldRev, "1"))
	p.op("E", key, millis(c.ttl))
}

// writeOld writes the key the update read: the per-key patch of an update
// in place, a record replaced where it was, or its deletion, with the
// forward record that replaces a session that moved.
func (s *Store) writeOld(p *ops, c *change) {
	if !c.guarded {
		return
	}
	key := s.SessionKey(c.old)
	switch {
	case c.inPlace:
		set, del := s.patchFields(c)
		p.hset(key, set)
		p.hdel(key, del)
		p.op("R", key)
		p.op("E", key, millis(c.ttl))
	case c.rec != nil && c.target == c.old:
		p.op("D", key)
		p.hset(key, append(encode(c.rec, c.identity), fieldRev, nextRev(c.rev)))
		p.op("E", key, millis(c.ttl))
	case c.removeOld:
		p.op("D", key)
		if c.forward != nil {
			p.hset(key, append(encode(c.forward, ""), fieldRev, nextRev(c.rev)))
			p.op("E", key, millis(c.fwdTTL))
		}
	}
}

// nextRev is the ":rev" of a record that replaces one of rev under the
// same key. It goes on counting rather than starting again at 1: a writer
// that read the record replaced, with its rev, must not find that rev
// again and take the new record for the one it read.
func nextRev(rev string) string {
	n, _ := strconv.ParseInt(rev, 10, 64)
	return strconv.FormatInt(n+1, 10)
}

// patchFields are the fields an update in place sets, as field, value
// pairs, and those it deletes: the keys that changed, the times that
// moved and the session's metadata that changed (meta.go), never the
// whole record.
func (s *Store) patchFields(c *change) (set, del []string) {
	set = make([]string, 0, 2*(len(c.set)+4)+len(c.metaSet))
	for _, k := range c.set {
		set = append(set, k, c.rec.Values[k])
	}
	set = append(set,
		fieldSeen, nanos(c.rec.LastSeen),
		fieldIdle, nanos(c.rec.IdleDeadline))
	set = append(set, c.metaSet...)
	del = append(slices.Clip(c.del), c.metaDel...)
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
