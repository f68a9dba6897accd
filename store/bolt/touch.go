package bolt

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Deferred touches. A touch (the keep-alive write that pushes a session's
// idle deadline back, at most once per touch interval) changes nothing a
// request reads but two deadlines, yet written on its own it costs a
// commit and its fsync: under a read load on one CPU, where the thread in
// fdatasync holds the only P, those commits were a fifth of the time
// (BENCHMARKS.md, "One CPU"). So a touch is not written when it is asked
// for: it is kept in memory, applied to what Load returns at once, and
// written with the next commit of the file (a login, a logout, the
// sweeper), or after DefaultTouchDelay when none comes sooner, many
// touches in one transaction.
//
// What this gives up, on purpose: a crash (of Caddy or of the machine)
// loses the touches of the last DefaultTouchDelay, and those sessions keep
// the idle deadline of their previous touch, which a touch interval ago
// was at most one touch interval shorter. It never brings a session back
// and never shortens one below what its last durable write said. A touch
// of a session within touchMargin of its idle deadline when it is
// answered (nearDeadline) is written before Update returns, as every other
// write is, so that a crash cannot end a session in use because of the
// deferral.
//
// Semantics are Decide's, twice: once when the touch is asked for, on the
// record as it then stands (to answer Update and to check that the touch
// is a plain in-place one), and again when it is written, on the record as
// it stands in that transaction, so that a session ended, revoked or
// rotated in between is not touched; and one written since by a later
// request is not moved back (writeTouches drops a touch older than the
// record's LastSeen).

// DefaultTouchDelay is how long a deferred touch waits for a commit to
// ride with before one is made for it.
const DefaultTouchDelay = time.Second

// touchMargin: a touch of a session whose idle deadline is closer than
// this is written at once.
const touchMargin = time.Minute

// maxPendingTouches bounds the touches kept in memory: past it, a touch
// is written at once, which costs a commit, never a touch.
const maxPendingTouches = 1 << 14

// pendingTouch is a touch not yet written.
type pendingTouch struct {
	update store.Update // as the request asked it; Update.Now is when
	// lastSeen and idle are the record's times after the touch, and
	// realm the realm it stamps on a record stored before realms, as Load
	// shows them until it is written.
	lastSeen, idle time.Time
	realm          string
	// readLastSeen and readIdle are the times of the record the touch was
	// decided on, as Load showed it then: with an earlier touch still
	// pending, which this one replaces, and which is then never written.
	readLastSeen, readIdle time.Time
}

// touchQueue holds the deferred touches of one Store.
type touchQueue struct {
	delay   time.Duration // <= 0: touches are written at once
	mu      sync.Mutex
	pending map[session.Hash]pendingTouch
	count   atomic.Int32 // len(pending), for the read path's quick check
	timer   *time.Timer  // armed while pending is not empty
	flush   func()       // makes a commit, which writes the pending touches
	closed  bool
}

// deferrable reports whether u is a plain touch: no key changed, no new
// ID, nothing ended, no flash value taken or put back.
func deferrable(u store.Update) bool {
	return u.HasHash && u.NewHash == nil && !u.Patch.Changes() &&
		(u.Patch == nil || (!u.Patch.Destroy && !u.Patch.DestroyAll && !u.Patch.Renew)) &&
		!u.TakeFlash && len(u.RestoreFlash) == 0
}

// deferTouch answers the touch u without writing it, when it can be
// deferred; ok false means it must be written at once.
func (s *Store) deferTouch(u store.Update) (res store.Result, err error, ok bool) {
	q := &s.touches
	if q.delay <= 0 || int(q.count.Load()) >= maxPendingTouches {
		return store.Result{}, nil, false
	}
	rec, err := s.current(u.Hash)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Result{}, nil, false // let the write report it
	}
	o := store.Decide(u, u.Hash, rec, 0)
	switch {
	case !o.Writes():
		// Gone, of another realm, rotated away; or a touch with NoTouch,
		// which writes nothing.
		return o.Result, o.Err, true
	case o.Err != nil || !o.InPlace || o.Remove || o.Forward != nil || !onlyTimesMoved(rec, o.Write):
		// An expired record to remove, or more than a touch: Decide's
		// outcome, not the update's fields, says what the write is.
		return store.Result{}, nil, false
	case nearDeadline(u, rec):
		return store.Result{}, nil, false
	case o.Write.LastSeen.Before(rec.LastSeen):
		// A touch after the clock stepped back (session.Record.SeenAhead):
		// overlay and writeTouches keep the later LastSeen, which would
		// drop it.
		return store.Result{}, nil, false
	}
	if !q.add(u, rec, o.Write) {
		return store.Result{}, nil, false
	}
	return o.Result, nil, true
}

// nearDeadline reports whether rec, the session u touches, is within
// touchMargin of its idle deadline when the touch is answered: from u's
// commit (Update.Committed), when the response goes out, not from u.Now,
// when its request began, which a slow app may have left long before the
// deadline, or past it (a request counts as a use when it began, and
// keeps a session whose idle deadline passed while it was in flight); and
// the deadline that u's timeouts give the record, which may be sooner
// than the one it holds (session.Timeouts.Deadlines: a reload that
// shortened idle_timeout). A crash loses a deferred touch, and such a
// session would end with it, soon after its user was answered.
func nearDeadline(u store.Update, rec *session.Record) bool {
	idle, _ := u.Timeouts.Deadlines(rec)
	return idle.Sub(u.Committed()) < touchMargin
}

// add keeps the touch u, decided on the record read and which leaves it
// as touched, unless a later one of the same session is kept already. It
// reports false when the queue is closed or full.
func (q *touchQueue) add(u store.Update, read, touched *session.Record) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.pending) >= maxPendingTouches {
		return false
	}
	if p, ok := q.pending[u.Hash]; ok && !u.Now.After(p.update.Now) {
		return true
	}
	if q.pending == nil {
		q.pending = make(map[session.Hash]pendingTouch)
	}
	q.pending[u.Hash] = pendingTouch{update: u, lastSeen: touched.LastSeen, idle: touched.IdleDeadline, realm: touched.Realm,
		readLastSeen: read.LastSeen, readIdle: read.IdleDeadline}
	q.count.Store(int32(len(q.pending)))
	if q.timer == nil {
		q.timer = time.AfterFunc(q.delay, q.flush)
	}
	return true
}

// overlay shows on rec, a copy the caller owns, the touch pending for
// hash, if any: its times if later than the record's own, and the realm
// it stamps on a record stored before realms.
func (q *touchQueue) overlay(hash session.Hash, rec *session.Record) {
	if q.count.Load() == 0 || rec.Forwarded() {
		return
	}
	q.mu.Lock()
	p, ok := q.pending[hash]
	q.mu.Unlock()
	if !ok {
		return
	}
	if p.lastSeen.After(rec.LastSeen) {
		rec.LastSeen, rec.IdleDeadline = p.lastSeen, p.idle
	}
	if rec.Realm == "" {
		rec.Realm = p.realm
	}
}

// take returns the pending touches to write in the next transaction, at
// most limit; they stay pending, and visible to Load, until written.
//
// When more than limit are pending, it takes those with the earliest idle
// deadlines. The expiry index is keyed by deadline and filled to
// expiryFillPercent, which counts on keys coming in the order of time:
// within one transaction their order does not matter (bbolt splits pages
// at the commit), but across transactions a touch taken at random from a
// backlog of several seconds lands before the keys the last one wrote,
// and splits a full page into a full one and a nearly empty one. Under
// reads faster than one transaction's worth of touches per DefaultTouchDelay,
// that left the index's pages about half full (BENCHMARKS.md, "bolt
// density").
func (q *touchQueue) take(limit int) []pendingTouch {
	if q.count.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]pendingTouch, 0, len(q.pending))
	for _, p := range q.pending {
		out = append(out, p)
	}
	if len(out) > limit {
		slices.SortFunc(out, func(a, b pendingTouch) int { return a.idle.Compare(b.idle) })
		out = out[:limit]
	}
	return out
}

// written forgets the touches of a committed transaction, unless a later
// touch of the same session has replaced one since it was taken.
func (q *touchQueue) written(done []pendingTouch) {
	if len(done) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range done {
		if p, ok := q.pending[d.update.Hash]; ok && p.update.Now.Equal(d.update.Now) {
			delete(q.pending, d.update.Hash)
		}
	}
	q.count.Store(int32(len(q.pending)))
	if len(q.pending) > 0 {
		// More than one transaction's worth, or some came meanwhile.
		if q.timer == nil && !q.closed {
			q.timer = time.AfterFunc(q.delay, q.flush)
		}
		return
	}
	q.pending = nil // let the map go
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
}

// fired clears the timer that has just fired, so that the next touch or
// what is left after a commit arms a new one. It reports false once the
// queue is closed.
func (q *touchQueue) fired() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.timer = nil
	return !q.closed
}

// rearm arms the timer again, if touches are pending, after a failed
// commit: they are tried again later.
func (q *touchQueue) rearm() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) > 0 && q.timer == nil && !q.closed {
		q.timer = time.AfterFunc(q.delay, q.flush)
	}
}

// close stops the timer; touches asked for from now on are written at
// once. What is pending stays, for the last flush.
func (q *touchQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
}

// writeTouches applies the pending touches in tx. A touch of a session
// that ended or moved on in the meantime writes nothing: Decide says so.
// One of a session that a later request has written since (its LastSeen
// is not before the touch) is dropped: it would move the deadlines back.
// Only an error of the file is returned.
//
// Decide judges the record as the touch was decided on, which Load
// showed: a touch that replaced an earlier pending one, never written, was
// asked for on a session that earlier touch kept alive, and the file alone
// may say it has expired since. Judged by the file, the touch would remove
// a session in use (pending touches outlive DefaultTouchDelay while
// commits fail, or when the clock steps).
func writeTouches(b txBuckets, touches []pendingTouch) error {
	for _, p := range touches {
		rec, _, err := b.get(p.update.Hash)
		if err != nil {
			return err
		}
		live := rec != nil && !rec.Forwarded()
		if live && !p.update.Now.After(rec.LastSeen) {
			continue
		}
		if live && p.readLastSeen.After(rec.LastSeen) {
			rec.LastSeen, rec.IdleDeadline = p.readLastSeen, p.readIdle
		}
		o := store.Decide(p.update, p.update.Hash, rec, 0)
		if o.Next != nil {
			// A touch alone follows no forward record (Decide); should
			// one ever, the update reads it as any other does.
			if _, err := update(b, p.update); err != nil {
				return err
			}
			continue
		}
		if err := b.execute(o); err != nil {
			return err
		}
	}
	return nil
}

// flushLater is the timer's: it writes what is pending, and reports a
// failure, which leaves the touches pending for the next commit.
func (s *Store) flushLater() {
	if !s.touches.fired() {
		return // closed: Close writes what is pending
	}
	if err := s.flushTouches(); err != nil {
		if s.onTouchError != nil {
			s.onTouchError(err)
		}
		s.touches.rearm()
	}
}

// flushTouches makes a commit, which writes the pending touches, and
// returns its error. It does nothing when none is pending.
func (s *Store) flushTouches() error {
	for s.touches.count.Load() > 0 {
		before := s.touches.count.Load()
		if err := s.write(func(*bbolt.Tx) error { return nil }); err != nil {
			return err
		}
		if s.touches.count.Load() >= before {
			return nil // touches keep coming: the next commit takes them
		}
	}
	return nil
}

// onlyTimesMoved reports whether after differs from before only by what a
// touch changes: LastSeen, the idle deadline and the realm stamped on a
// record stored before realms. Only such a write is deferred; any other
// is written at once, whatever field of the update asked for it.
func onlyTimesMoved(before, after *session.Record) bool {
	return after.Created.Equal(before.Created) &&
		after.AbsoluteDeadline.Equal(before.AbsoluteDeadline) &&
		after.Remembered == before.Remembered &&
		after.UserAgent == before.UserAgent &&
		after.ClientNet == before.ClientNet &&
		after.Successor == nil && before.Successor == nil &&
		(after.Realm == before.Realm || before.Realm == "") &&
		maps.Equal(after.Values, before.Values) &&
		maps.Equal(after.Flash, before.Flash)
}
