// Package store holds the Store interface, which keeps session records
// under the hash of their ID, and its implementations. Every implementation
// passes the one conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// ErrNotFound is returned for a session that does not exist or has expired.
// Callers treat it as "anonymous", never as a store failure.
var ErrNotFound = errors.New("session not found")

// ErrStale is returned by an Update that reached, through a forward record,
// a successor whose identity is not the one the request saw (a login
// happened since it loaded the session). Nothing was written; the caller
// drops the request's changes and issues no cookie.
var ErrStale = errors.New("the session moved on to another identity since the request loaded it")

// ErrNeedsRotation is returned by an Update with RenewOn that would
// change, in the session as it stands when the update is applied, the
// value of a RenewOn key or the persistence, without moving it to a new
// ID (no NewHash): the caller decided not to rotate on the session as it
// loaded it, and another request has changed that since (a rotation that
// kept the user, reached through a forward record). Nothing was written;
// the caller updates again with a NewHash, as for any such change.
var ErrNeedsRotation = errors.New("the update changes what gives the session a new ID, as the session now stands, and has no NewHash")

// ErrUnreplicated is wrapped by the error of an Update that the store
// made, whole, but that fewer replicas acknowledged in time than it was
// asked to wait for (Redis's wait_replicas): a failover could still undo
// it. Update returns it with the Result of the update, as after a
// success: a caller that fails the request must still give the client the
// session's new ID, since the old one no longer opens it.
var ErrUnreplicated = errors.New("the write is stored but fewer replicas than asked for acknowledged it in time")

// Store keeps session records. Implementations are safe for concurrent use
// by many goroutines and by several Caddy configs at once (reloads), and
// every method that writes is atomic: it happens whole or not at all.
type Store interface {
	// Load returns the record stored under hash, whatever its realm, or
	// ErrNotFound when there is none or it has expired at now (by timeouts
	// as well as by its stored deadlines; a forward record by its stored
	// deadlines only). A forward record is returned as such (Forwarded):
	// the caller must not adopt it. With a ctx marked by Fresh, a store
	// that caches reads past its cache.
	Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error)

	// Update applies u in one transaction and returns where the session
	// now stands (Result.Record nil when the update ended it and started
	// none). See Update for the exact semantics; Decide holds them. A
	// *session.RuleError from the patch aborts the whole update and is
	// returned as is; so are ErrNotFound, ErrStale, ErrNeedsNewHash and
	// ErrNeedsRotation,
	// after which nothing was written but the removal of expired records.
	// An error that wraps ErrUnreplicated comes with the Result: the
	// update was made.
	Update(ctx context.Context, u Update) (Result, error)

	// Delete removes the session stored under hash, returning ErrNotFound
	// when there is none. A forward record is no session: it is left to
	// expire, and Delete returns ErrNotFound.
	Delete(ctx context.Context, hash session.Hash) error

	// DeleteByIdentity removes every session of realm (and every session
	// with no realm, stored before realms existed) whose identity key (see
	// Update.Identity) is key and whose value of it is value, and returns
	// how many it removed. Sessions of other realms are left alone.
	DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error)

	// ListByIdentity returns the live sessions (never forward records) of
	// realm, and those with no realm (stored before realms existed), whose
	// identity key (see Update.Identity) is key and whose value of it is
	// value: the sessions DeleteByIdentity would remove, for a user's list
	// of devices or a cap on their sessions. They come in hash order, at
	// most MaxListByIdentity of them: an identity with more live sessions
	// has those after the first MaxListByIdentity in hash order left out,
	// so a caller that gets that many must take the list as incomplete.
	// Live is by the records' stored deadlines at now, as for List; a
	// caller whose timeouts are shorter than those the records were
	// written with leaves out those its timeouts have ended. The store
	// finds the sessions through its identity index, and the record, not
	// the index, says whose session it is: a session whose identity only
	// shares the index's digest with value is never listed. It only
	// reads, and never holds a transaction open between calls.
	ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]Entry, error)

	// List returns up to limit live sessions (never forward records) in
	// an order of the store's own that pages do not change (bolt: by hash;
	// Redis: by index bucket, then hash), starting after cursor ("" for
	// the first page), and the cursor of the next page ("" after the
	// last). It never holds a transaction open between calls.
	List(ctx context.Context, cursor string, limit int, now time.Time) ([]Entry, string, error)

	// Count returns how many live sessions (not forward records) the store
	// holds at now.
	Count(ctx context.Context, now time.Time) (int, error)

	// Import stores sessions moved from another store, each as it was,
	// so that their cookies keep working (see Import for the semantics,
	// which DecideImport holds), and returns what it did with each entry,
	// in order. An entry that fails CheckImport makes it return an
	// *ImportError, having written nothing. It is atomic per session, not
	// per batch: a failure of the store may leave some entries imported,
	// and running the batch again finishes it.
	Import(ctx context.Context, imp Import) ([]ImportStatus, error)

	// Close releases the store's resources.
	Close() error
}

// MaxListByIdentity bounds how many sessions ListByIdentity returns: far
// more than one user has devices, and few enough that listing the
// sessions of an identity that a script logged in in a loop costs what a
// page of List does.
const MaxListByIdentity = 1000

// Entry is one session in a listing.
type Entry struct {
	Hash   session.Hash
	Record *session.Record
	// Identity is the identity key the session is indexed under ("" for
	// none), as List returns it and Import takes it.
	Identity string
}

// Result is where an Update left the session.
type Result struct {
	// Record is the session as it now stands; nil when the update ended
	// it and started none.
	Record *session.Record
	// Hash is where Record lives; zero when Record is nil.
	Hash session.Hash
	// Acted is the hash of the session the update read and acted on: the
	// presented Update.Hash, or, when it followed forward records
	// (Followed), the successor it reached, one hop or several away. If
	// Record is nil or Hash is not Acted, the update ended that session
	// or moved it on; otherwise it stands there. A caller that keeps
	// copies of sessions by hash learns from it what to forget, which
	// neither Update.Hash (only a forward record after Followed) nor Hash
	// (zero for an end) names. Zero for an update that presented no
	// session (not HasHash) or failed.
	Acted session.Hash
	// Followed reports that the update reached the session through a
	// forward record: the request's ID had been rotated away while it was
	// in flight, and its changes landed in the successor.
	Followed bool
	// Remembered reports that the update changed the persistence of the
	// session (X-Session-Remember) to Record's: it made it remembered, or
	// returned it to the normal timeouts, or started it remembered. An
	// update that found the session already as asked (another request
	// changed it first) did not.
	Remembered bool
	// Expired reports that the update ended the session (Record is nil)
	// because X-Session-Remember: false returned it to timeouts it had
	// already outlived: an expiry that a request saw, not a logout.
	Expired bool
	// Flash holds the flash values Update.TakeFlash took, nil if none.
	Flash map[string]string
}

// Update is one atomic change to a session. Decide holds its semantics;
// in short:
//
//  1. If HasHash, the record under Hash is read. A missing or expired one
//     (expired by Timeouts too, at Now, or past its absolute deadline at
//     Commit; an expired one is removed), or one of another realm, makes
//     Update return ErrNotFound, whatever the patch:
//     the session ended while the request was in flight, and its changes
//     are dropped, never applied to a new session.
//  2. A forward record is followed to its successor (a few hops at most).
//     If the successor's identity value (the value of Identity, "" if
//     none) is Seen, the update applies to the successor as if it had
//     been presented (Result.Followed); otherwise Update returns ErrStale,
//     unless it only puts back flash values (RestoreFlash), which go to
//     the successor whatever its identity: the rotation would have
//     carried them there had they not been taken.
//     A touch alone (no patch changes, no NewHash, no Destroy, no flash
//     values taken or restored) through a forward record writes nothing
//     and returns ErrNotFound.
//  3. If Patch.Destroy, the record is removed (no forward record is left).
//  4. TakeFlash takes the flash values of the record as stored, and
//     RestoreFlash puts taken ones back. If Patch sets or deletes keys or
//     sets flash values, they are then applied per key to the record, or
//     to a new one created at Now if there is none (which needs NewHash
//     and not HasHash, or Destroy), and the result is checked against
//     Limits. A new one keeps UserAgent and ClientNet.
//  5. A record that moves to NewHash, or starts, takes the persistence
//     that Patch.Remember asks for, with the deadlines of the timeouts that
//     then apply (Timeouts.SetRemembered); one that Remember returns to
//     timeouts it has outlived ends instead (Result.Expired). A record
//     that stays where it is keeps its persistence: a new one comes with
//     a new ID only. With RenewOn, an update that would change the
//     persistence or a RenewOn key of a record that stays where it is
//     returns ErrNeedsRotation instead.
//  6. The record, if any, is touched at Now (LastSeen and IdleDeadline
//     move, by Timeouts) unless NoTouch or it was last seen after
//     Now (a later request touched it: a touch never moves the deadlines
//     back), stamped with Realm, and stored
//     under NewHash if set, or else where it was. A record that moves to
//     NewHash leaves under its old hash a forward record to NewHash, which
//     expires session.ForwardTTL after the update is applied (Commit,
//     not Now: a slow renewal's forward record must lead on after it) or
//     at the session's own end, if earlier. A touch alone with NoTouch writes nothing.
type Update struct {
	// Hash is the session the request presented, when HasHash is set.
	Hash    session.Hash
	HasHash bool
	// NewHash, when not nil, is where the record lives afterwards: a
	// renewal (the old hash stops working at once) or a new session.
	NewHash *session.Hash
	// Patch is the change; nil only touches the record.
	Patch *session.Patch
	// Identity names the key whose value identifies the user (usually
	// "user"); the store indexes sessions by it for DeleteByIdentity. Empty
	// means no index entry.
	Identity string
	// Seen is the value of the identity key in the record the request
	// loaded ("" if it had none): the update may follow a forward record
	// only to a successor of the same identity.
	Seen string
	// RenewOn, when not nil, are the keys whose change gives a session a
	// new ID (the handler's renew_on, lowercase), and holds the update to
	// the caller's decision on the session as the request loaded it: an
	// update that would change, in the session it reaches, one of these
	// keys or its persistence (Patch.Moves) without moving it (no
	// NewHash) returns ErrNeedsRotation, having written nothing. A
	// request in flight across another request's rotation reaches a
	// successor that may differ from what it loaded in just those keys.
	// nil checks nothing: Patch.Remember does nothing to a session that
	// stays where it is.
	RenewOn []string
	// Realm is the realm of the handler: stamped on the records it writes;
	// a record of another realm is not found.
	Realm string
	// NoTouch leaves LastSeen and the idle deadline of the session as they
	// were, whatever else the update does: its keys change and it may move
	// to NewHash, but the request does not count as a use of it (no_touch,
	// X-Session-Touch: false). A session the update starts is still new at
	// Now.
	NoTouch bool
	// TakeFlash takes the session's flash values: they are removed from
	// the stored record and returned in Result.Flash, in one atomic
	// step, so that of several requests that take them at once exactly
	// one gets them. A take that finds none writes nothing. It does not
	// touch the session by itself: set NoTouch, and the commit of the
	// request touches it as any other.
	TakeFlash bool
	// RestoreFlash puts back flash values that a TakeFlash took, for a
	// request whose response failed: each whose key the session holds no
	// flash value for (in either spelling of '_' and '-'), since one set
	// since is newer. It checks no limit, since they were admitted once.
	// Restoring nothing writes nothing.
	RestoreFlash map[string]string
	// Now is when the request began: it touches the session then, and
	// judges it live or expired then.
	Now time.Time
	// Commit is when the request is applied, if later than Now (zero:
	// Now). A request in flight keeps its session from ending idle (it
	// was a use when it began), but nothing moves the absolute deadline:
	// a session whose absolute deadline has passed by Commit ended while
	// the request was in flight, and the update finds it gone
	// (ErrNotFound), as it would after a logout, rather than renew,
	// remember or write a session no request may open any more.
	Commit   time.Time
	Timeouts session.Timeouts
	Limits   session.Limits
	// UserAgent is the User-Agent of the request, for a session the update
	// starts: Decide keeps it in the new record (Record.UserAgent), cut to
	// session.MaxUserAgent bytes, and ignores it otherwise, since a
	// session keeps the User-Agent it was created with, through writes and
	// rotations. "" records none (record_user_agent is off).
	UserAgent string
	// ClientNet is the network of the request's client (bind ip), for a
	// session the update starts: kept as Record.ClientNet, and ignored
	// otherwise, as UserAgent is. "" records none.
	ClientNet string
	// Seal, when not nil, opens sealed records and seals the records the
	// update writes (seal_values; see Sealing). nil: records are read and
	// written plain, and a sealed one makes the update fail.
	Seal *Sealing
}
