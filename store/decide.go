package store

import (
	"errors"
	"slices"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// MaxHops bounds how many forward records one Update follows. A chain
// grows by one link per rotation within session.ForwardTTL, which takes a
// login and a few renewals at most; a longer one is treated as gone rather
// than walked.
const MaxHops = 4

// ExpiryGrace is how long after its deadline a store keeps a session
// before it removes it by itself (bolt's sweeper, Redis's key TTL). Load
// finds it expired at once, and so does the update of every request that
// began after the deadline; but Decide judges an update by when its
// request began (Update.Now): one that began before the idle deadline
// keeps the session, its touch or its writes applied, when it answers
// after it. Removed at the deadline, the session was gone by the time
// such a request answered, which the update then found ended (the user
// logged out, their writes dropped, the answer withheld), and whether it
// did depended on when bolt's sweeper last ran. Kept ExpiryGrace longer,
// a request in flight across the idle deadline finds its session if it
// answers within ExpiryGrace of the deadline: the bound that
// session.ForwardTTL puts on a request in flight across a rotation. A
// store may remove a record later than that, never sooner.
const ExpiryGrace = session.ForwardTTL

// ErrNeedsNewHash is returned by an Update that would start a session but
// says not where to keep it: a caller's mistake, never a store's.
var ErrNeedsNewHash = errors.New("an update that starts a new session needs a NewHash to store it under")

// Outcome is what an Update does, as Decide works it out from one record
// the store read. A store executes it whole, in one transaction, and
// decides nothing itself, so that every store keeps the same semantics.
//
// Execution, in this order:
//
//   - Remove: delete the record under At with its index entries.
//   - Forward: store this forward record under At (Remove is then set).
//     It is not indexed under any identity, and List and Count skip it.
//   - Write: store this record under WriteAt, indexed under Identity. If
//     InPlace, it replaces the record read under At (WriteAt is At) and
//     differs from it only by the keys in Set and Del, the touched times,
//     the realm, the identity key it is indexed under and the session's
//     metadata (Remembered, Flash, UserAgent, ClientNet), so a store may write only
//     those, the metadata by comparing Write with the record it read.
//     Otherwise it replaces whatever is under WriteAt.
//
// Then Update returns Result and Err. When Next is set, nothing is written
// for this step: the store reads the record under *Next and calls Decide
// again, one hop further, with the update o.Onward(u).
type Outcome struct {
	// At is the hash whose record Decide was given.
	At session.Hash
	// Next is the successor of the forward record read under At, to be
	// read next.
	Next *session.Hash

	Remove  bool
	Forward *session.Record

	Write    *session.Record
	WriteAt  session.Hash
	Identity string
	InPlace  bool
	Set, Del []string

	Result Result
	Err    error

	nextSeal *Sealing // the update's Sealing for the record under Next
}

// Writes reports whether the outcome changes the store.
func (o *Outcome) Writes() bool {
	return o.Remove || o.Forward != nil || o.Write != nil
}

// Decide works out what u does given the record stored under at, read by
// the store in the transaction that will execute the outcome: stored is
// nil when there is none (expired records included: Decide judges expiry
// by u.Now, and the absolute deadline by u.Commit as well). hop is how
// many forward records were followed to reach at: 0 for u.Hash, or for an
// update without HasHash, which reads nothing (at and stored are then
// ignored).
//
// Decide never changes stored and does no I/O; the records it returns are
// its own.
func Decide(u Update, at session.Hash, stored *session.Record, hop int) Outcome {
	if sealing(u, stored) {
		return decideSealed(u, at, stored, hop) // seal.go
	}
	return decide(u, at, stored, hop)
}

// decide is Decide on plain records.
func decide(u Update, at session.Hash, stored *session.Record, hop int) Outcome {
	o := Outcome{At: at}
	if !u.HasHash {
		return create(u, o)
	}
	switch {
	case stored == nil:
		return o.fail(ErrNotFound)
	case stored.Realm != "" && stored.Realm != u.Realm:
		// Before the expiry: another realm's timeouts, which may be
		// shorter, do not judge this record, let alone remove it.
		return o.fail(ErrNotFound)
	case expired(u, stored):
		o.Remove = true
		return o.fail(ErrNotFound)
	case idled(u, stored):
		// Left for the store to remove (ExpiryGrace): another request
		// in flight across the idle deadline, a use, may keep it yet.
		return o.fail(ErrNotFound)
	case stored.Forwarded():
		return follow(u, o, stored, hop)
	case hop > 0 && identityValue(stored, u.Identity) != u.Seen && !restoresOnly(u):
		// A login (or a logout and a new session) happened since the
		// request loaded the session: its changes belong to the user it
		// saw, not to whoever holds the session now.
		return o.fail(ErrStale)
	case destroys(u.Patch):
		return acted(destroy(u, o, hop > 0))
	}
	return acted(keep(u, o, stored, hop > 0))
}

// acted stamps the result of o, which acts on the live session under
// o.At, with that hash: after forward records it is not the one the
// request presented, and a caller must learn which session it ended or
// moved. A failed outcome acted on nothing.
func acted(o Outcome) Outcome {
	if o.Err == nil {
		o.Result.Acted = o.At
	}
	return o
}

// fail makes o return err, keeping only the removal of an expired record.
func (o Outcome) fail(err error) Outcome {
	o.Result, o.Err = Result{}, err
	return o
}

// expired judges a session by the timeouts as well, which may have been
// shortened since it was written, when the request began, and by its
// absolute deadline when the request is applied too (Update.Commit): a
// request's use of the session when it began holds off the idle deadline,
// never the absolute one. A forward record is judged by its own deadlines
// only, which no timeout set, and when the request is applied: it was
// written at the rotation, after the requests in flight across it began,
// so judged when they began it never ended for them, and a request that
// answered minutes later still wrote into the successor for as long as
// the store kept the record (bolt sweeps it ExpiryGrace after its end).
func expired(u Update, stored *session.Record) bool {
	if stored.Forwarded() {
		return stored.Expired(u.Committed())
	}
	return u.Timeouts.Expired(stored, u.Now) ||
		u.Commit.After(u.Now) && !u.Commit.Before(u.Timeouts.AbsoluteEnd(stored))
}

// idled reports whether the session stored ended idle while u's request
// was in flight, the request being no use of it (NoTouch): a request
// holds off the idle deadline by its use when it began, and one that is
// no use holds off nothing. Its commands then find the session ended, as
// its answer does (a read that is no use and answers after the idle
// deadline is withheld), rather than write into a session that nothing
// can open any more, or hand the client a new ID of it.
func idled(u Update, stored *session.Record) bool {
	return u.NoTouch && !stored.Forwarded() && u.Commit.After(u.Now) && u.Timeouts.Expired(stored, u.Commit)
}

// Committed is when u is applied: u.Commit, or u.Now if that is later
// or Commit is zero (a clock that stepped back during the request).
func (u Update) Committed() time.Time {
	if u.Commit.After(u.Now) {
		return u.Commit
	}
	return u.Now
}

// steppedBack reports whether the clock went back since rec was last
// seen: even u's commit comes more than session.MaxClockLag before that
// use, which no request in flight explains. A zero Commit tells nothing.
func steppedBack(u Update, rec *session.Record) bool {
	commit := u.Commit
	if commit.IsZero() {
		return false
	}
	if commit.Before(u.Now) {
		commit = u.Now
	}
	return rec.SeenAhead(commit)
}

func destroys(p *session.Patch) bool { return p != nil && p.Destroy }

// touchOnly reports whether u would only move the session's deadlines.
func touchOnly(u Update) bool {
	return u.NewHash == nil && !u.Patch.Changes() && !destroys(u.Patch)
}

// identityValue is the value of the identity key in rec, "" if none.
func identityValue(rec *session.Record, identity string) string {
	v, _ := rec.IdentityValue(identity)
	return v
}

// follow steps from a forward record to its successor.
func follow(u Update, o Outcome, fwd *session.Record, hop int) Outcome {
	if hop >= MaxHops {
		return o.fail(ErrNotFound)
	}
	if touchOnly(u) && !movesFlash(u) {
		// The request that rotated the session touched it: keeping a
		// rotated-away ID alive is no reason to write.
		return o.fail(ErrNotFound)
	}
	next := *fwd.Successor
	o.Next = &next
	return o
}

// create starts a session, for an update that presented none.
func create(u Update, o Outcome) Outcome {
	if !u.Patch.Changes() {
		return o // nothing to keep: the request stays anonymous
	}
	rec, err := fresh(u)
	if err != nil {
		return o.fail(err)
	}
	o.write(u, rec, *u.NewHash)
	o.Result.Remembered = rec.Remembered // a new session starts not remembered
	return o
}

// destroy ends the live session under o.At, and starts a new one with the
// patch's keys if it sets any.
func destroy(u Update, o Outcome, followed bool) Outcome {
	if u.Patch.Starts() {
		rec, err := fresh(u)
		if err != nil {
			return o.fail(err)
		}
		o.write(u, rec, *u.NewHash)
		o.Result.Remembered = rec.Remembered
	}
	o.Remove = true
	o.Result.Followed = followed
	return o
}

// keep applies u to the live session stored under o.At: in place, or moved
// to u.NewHash with a forward record left behind. With u.NoTouch, or when
// the record was last seen after u.Now, it keeps its LastSeen and idle
// deadline, wherever it goes, and a touch alone writes nothing. Only a
// session that moves takes the persistence that u.Patch.Remember asks for
// (remember.go).
func keep(u Update, o Outcome, stored *session.Record, followed bool) Outcome {
	moves := u.NewHash != nil && *u.NewHash != o.At
	if !moves && u.RenewOn != nil && u.Patch.Moves(stored, u.RenewOn) {
		// The caller decided on the session as it loaded it, which
		// another request has changed since: a change of a renew_on key
		// or of the persistence still moves it, whoever answers last.
		return o.fail(ErrNeedsRotation)
	}
	rec := stored.Clone()
	taken, flashed := flashStep(u, rec)
	// A request touches the session at Now, when it began: one that began
	// before the session's last use (a slow request answering after a
	// newer one touched it) must not move LastSeen and the idle deadline
	// back, unless even its commit comes before that use, as only a clock
	// that stepped back makes it (session.Record.SeenAhead).
	touches := !u.NoTouch && (!u.Now.Before(rec.LastSeen) || steppedBack(u, rec))
	if !touches && touchOnly(u) && !flashed {
		o.Result = Result{Record: rec, Hash: o.At, Followed: followed}
		return o
	}
	if err := u.Patch.ApplyTo(rec, u.Limits); err != nil {
		return o.fail(err)
	}
	switched := moves && remember(u, rec)
	if switched && expired(u, rec) {
		// Back to timeouts it has outlived: judged as the stored record
		// is, by its absolute deadline when the update is applied too, so
		// that a forget in flight across the normal absolute deadline
		// writes no session already past it.
		return o.expire(followed)
	}
	if touches {
		u.Timeouts.Touch(rec, u.Now)
	}
	if u.Commit.After(u.Now) && u.Timeouts.Expired(rec, u.Commit) {
		// The request's use when it began does not carry the session to
		// its commit: it began before the idle deadline that has passed
		// since, but longer than the idle timeout ago (a slow upload
		// under a short idle_timeout). Written, the record would be over
		// already: a set, a flash value or a renewal applied to a
		// session that nothing opens any more, and a cookie naming it,
		// the client told that its writes stood. The session ended
		// while the app ran, as for a request that is no use of it
		// (idled), and is left to the others in flight and the store.
		return o.fail(ErrNotFound)
	}
	rec.Realm = u.Realm
	if !moves {
		o.InPlace = true
		o.Set, o.Del = changedKeys(u.Patch)
		o.write(u, rec, o.At)
	} else {
		o.write(u, rec, *u.NewHash)
		o.Remove = true
		o.Forward = forward(u, rec, *u.NewHash)
	}
	o.Result.Followed = followed
	o.Result.Flash = taken
	o.Result.Remembered = switched
	return o
}

// fresh is a new session holding u's keys, started when u is applied
// (Update.Committed): started when its request began, a login whose app
// took longer than the idle timeout (a slow upload beside it) wrote a
// session already over, and its cookie named a session that nothing
// opens.
func fresh(u Update) (*session.Record, error) {
	if u.NewHash == nil {
		return nil, ErrNeedsNewHash
	}
	rec := u.Timeouts.NewRecord(u.Committed())
	if err := u.Patch.ApplyTo(rec, u.Limits); err != nil {
		return nil, err
	}
	remember(u, rec)
	rec.Realm = u.Realm
	rec.UserAgent = session.TruncateUserAgent(u.UserAgent)
	rec.ClientNet = u.ClientNet
	return rec, nil
}

// forward is the forward record to next that a session leaves under its
// old hash when it moves, at u's commit (Update.Committed). It ends
// session.ForwardTTL later, or with the session, if that is sooner: it
// must not outlive what it leads to. Anchored at u.Now, when the request
// began, a renewal whose app took two minutes or more (a slow login)
// left a forward record already over when it was written, and the other
// requests of the old ID in flight across it had their commands dropped
// and their answers withheld, as if the user had been logged out.
func forward(u Update, rec *session.Record, next session.Hash) *session.Record {
	at := u.Committed()
	end := at.Add(session.ForwardTTL)
	if e := rec.ExpiresAt(); e.Before(end) {
		end = e
	}
	return &session.Record{
		Created:          at,
		LastSeen:         at,
		IdleDeadline:     end,
		AbsoluteDeadline: end,
		Values:           map[string]string{},
		Realm:            u.Realm,
		Successor:        &next,
	}
}

// write makes rec, stored under at, the outcome's record.
func (o *Outcome) write(u Update, rec *session.Record, at session.Hash) {
	o.Write, o.WriteAt = rec, at
	if _, ok := rec.IdentityValue(u.Identity); ok {
		o.Identity = u.Identity
	}
	o.Result.Record, o.Result.Hash = rec, at
}

// changedKeys are the keys p sets, in order, and those it deletes without
// setting them again.
func changedKeys(p *session.Patch) (set, del []string) {
	if !p.Changes() {
		return nil, nil
	}
	set = make([]string, 0, len(p.Set))
	for k := range p.Set {
		set = append(set, k)
	}
	slices.Sort(set)
	for _, k := range p.Delete {
		if _, ok := p.Set[k]; !ok && !slices.Contains(del, k) {
			del = append(del, k)
		}
	}
	return set, del
}
