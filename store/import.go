package store

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/caddy-session/caddy-session/session"
)

// ErrBadCursor is returned by a List given a cursor it did not return: the
// caller's mistake, not a failure of the store.
var ErrBadCursor = errors.New("bad session list cursor")

// Import is one batch of sessions moved from another store (caddy session
// import), each to be stored as it was: under its hash, with its times,
// deadlines, realm and metadata, and indexed under its identity key, so
// that the cookies users hold keep opening them. DecideImport holds the
// semantics; in short:
//
//  1. Every entry is checked first (CheckImport at Now, against Limits):
//     one that fails makes Store.Import return an *ImportError naming it,
//     and nothing of the batch is written.
//  2. An entry whose hash holds nothing live (no record, or one expired by
//     its stored deadlines) is stored (Imported).
//  3. One whose hash holds exactly the same record, indexed under the same
//     identity key, writes nothing (Unchanged): an import can be run again.
//  4. One whose hash holds another live session keeps that session
//     (Kept), unless Overwrite, and then it is replaced (Imported). One
//     whose hash holds a live forward record (the ID was renewed away)
//     keeps it (Kept) even under Overwrite: the ID opens nothing again.
type Import struct {
	// Entries are the sessions, each with its Identity: the identity key
	// it is indexed under, "" for none.
	Entries []Entry
	// Now judges expiry: of the entries, and of what is stored.
	Now time.Time
	// Overwrite replaces a live session that differs from the entry
	// (never a forward record).
	Overwrite bool
	// Limits bound the entries as they bound a session's writes.
	Limits session.Limits
}

// ImportStatus is what Store.Import did with one entry.
type ImportStatus uint8

const (
	// Imported: the entry is now stored as given.
	Imported ImportStatus = iota + 1
	// Unchanged: the store held the entry exactly as given already.
	Unchanged
	// Kept: another live record was under the entry's hash and was kept,
	// since Import.Overwrite was not set.
	Kept
)

func (s ImportStatus) String() string {
	switch s {
	case Imported:
		return "imported"
	case Unchanged:
		return "unchanged"
	case Kept:
		return "kept"
	}
	return fmt.Sprintf("ImportStatus(%d)", uint8(s))
}

// ImportError is an entry that Store.Import refused, with nothing of its
// batch written.
type ImportError struct {
	// Index is the entry's place in Import.Entries.
	Index int
	Err   error
}

func (e *ImportError) Error() string { return fmt.Sprintf("session %d: %v", e.Index+1, e.Err) }
func (e *ImportError) Unwrap() error { return e.Err }

// CheckEntries checks every entry of imp (CheckImport), and returns an
// *ImportError for the first that fails.
func CheckEntries(imp Import) error {
	for i, e := range imp.Entries {
		if err := CheckImport(e, imp.Now, imp.Limits); err != nil {
			return &ImportError{Index: i, Err: err}
		}
	}
	return nil
}

// CheckImport returns nil if e can be imported at now under lim, or an
// error that says what is wrong with it. An import can plant any session,
// so an entry must be one a handler could have written: a live session
// (no forward record), keys as the protocol allows them, values that
// could have come in a header, deadlines in order, and what a session
// holds within the limits.
func CheckImport(e Entry, now time.Time, lim session.Limits) error {
	if e.Record != nil && e.Record.Sealed {
		return checkSealedImport(e, now, lim) // seal.go
	}
	rec := e.Record
	switch {
	case rec == nil:
		return errors.New("it has no record")
	case rec.Forwarded():
		return errors.New("it is a forward record (the old ID of a renewed session), which is no session: export only sessions")
	}
	if err := checkTimes(rec, now); err != nil {
		return err
	}
	switch {
	case len(rec.UserAgent) > session.MaxUserAgent:
		return fmt.Errorf("its user agent has %d bytes, over the %d a session keeps", len(rec.UserAgent), session.MaxUserAgent)
	case rec.ClientNet != "" && !validNet(rec.ClientNet):
		return fmt.Errorf("its client network %q is not a network in CIDR notation (as bind ip keeps it)", rec.ClientNet)
	}
	if err := checkPairs("key", rec.Values, lim); err != nil {
		return err
	}
	if err := checkPairs("flash value", rec.Flash, lim); err != nil {
		return err
	}
	if e.Identity != "" {
		if err := checkKeyName(e.Identity); err != nil {
			return fmt.Errorf("identity: %v", err)
		}
		if _, ok := rec.IdentityValue(e.Identity); !ok {
			return fmt.Errorf("it is indexed under identity key %q, which it does not hold", e.Identity)
		}
	}
	keys, size := len(rec.Values)+len(rec.Flash), rec.Size()+rec.FlashSize()
	if lim.Keys > 0 && keys > lim.Keys {
		return fmt.Errorf("it has %d keys and flash values, over the limit of %d", keys, lim.Keys)
	}
	if lim.SessionSize > 0 && size > lim.SessionSize {
		return fmt.Errorf("it holds %d bytes of keys and flash values, over the limit of %d", size, lim.SessionSize)
	}
	return nil
}

// checkTimes checks that rec's times are all there, in order, and that it
// is live at now.
func checkTimes(rec *session.Record, now time.Time) error {
	switch {
	case rec.Created.IsZero() || rec.LastSeen.IsZero() || rec.IdleDeadline.IsZero() || rec.AbsoluteDeadline.IsZero():
		return errors.New("it lacks one of its times: created, last_seen, idle_deadline and absolute_deadline are all needed")
	case rec.LastSeen.Before(rec.Created):
		return errors.New("it was last seen before it was created")
	case rec.IdleDeadline.After(rec.AbsoluteDeadline):
		return errors.New("its idle deadline is after its absolute deadline")
	case rec.Expired(now):
		return fmt.Errorf("it expired at %s", rec.ExpiresAt().UTC().Format(time.RFC3339))
	}
	return nil
}

// checkPairs checks the keys and values of a session's values or flash
// values.
func checkPairs(what string, pairs map[string]string, lim session.Limits) error {
	if a, b, twins := session.Twins(pairs); twins {
		return fmt.Errorf("%ss %q and %q are one key (- and _ are one character in a header name); keep one", what, a, b)
	}
	for k, v := range pairs {
		if err := checkKeyName(k); err != nil {
			return fmt.Errorf("%s: %v", what, err)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return fmt.Errorf("the value of %s %q is not a valid header value", what, k)
		}
		if lim.ValueSize > 0 && len(v) > lim.ValueSize {
			return fmt.Errorf("the value of %s %q has %d bytes, over the limit of %d", what, k, len(v), lim.ValueSize)
		}
	}
	return nil
}

// checkKeyName checks a key as a record holds it: valid and lowercase.
func checkKeyName(k string) error {
	if err := session.CheckKey(k); err != nil {
		return err
	}
	if k != strings.ToLower(k) {
		return fmt.Errorf("%q is not lowercase, as stored keys are", k)
	}
	return nil
}

// DecideImport works out what importing e does, given the record stored
// under e.Hash, read in the transaction that will execute the outcome
// (stored nil when there is none), and the identity key it is indexed
// under. e must have passed CheckImport. The outcome replaces the stored
// record, index entries and all, with a copy of e's, or writes nothing.
func DecideImport(e Entry, stored *session.Record, storedIdentity string, now time.Time, overwrite bool) (Outcome, ImportStatus) {
	o := Outcome{At: e.Hash}
	if stored != nil && !stored.Expired(now) {
		if storedIdentity == e.Identity && SameRecord(stored, e.Record) {
			return o, Unchanged
		}
		// A forward record is kept even under overwrite: the renewal
		// retired the ID (a login, a privilege change, X-Session-Renew),
		// and a session stored under it again would open for whoever
		// still holds the old cookie, beside the successor the user holds.
		// Overwrite is for sessions that were used since they were
		// exported, not for IDs that no request may adopt.
		if !overwrite || stored.Forwarded() {
			return o, Kept
		}
	}
	rec := e.Record.Clone()
	// What is there, even expired, goes with its index entries.
	o.Remove = stored != nil
	o.Write, o.WriteAt, o.Identity = rec, e.Hash, e.Identity
	o.Result = Result{Record: rec, Hash: e.Hash}
	return o, Imported
}

// SameRecord reports whether a and b are the same record, field by field:
// times by instant, no flash values the same as an empty map.
func SameRecord(a, b *session.Record) bool {
	sameNext := a.Successor == nil && b.Successor == nil ||
		a.Successor != nil && b.Successor != nil && *a.Successor == *b.Successor
	return a.Created.Equal(b.Created) && a.LastSeen.Equal(b.LastSeen) &&
		a.IdleDeadline.Equal(b.IdleDeadline) && a.AbsoluteDeadline.Equal(b.AbsoluteDeadline) &&
		maps.Equal(a.Values, b.Values) && a.Realm == b.Realm && sameNext &&
		a.Remembered == b.Remembered && maps.Equal(a.Flash, b.Flash) && a.UserAgent == b.UserAgent &&
		a.ClientNet == b.ClientNet
}

// validNet reports whether s is a masked network in CIDR notation, as a
// record's ClientNet is kept.
func validNet(s string) bool {
	p, err := netip.ParsePrefix(s)
	return err == nil && p == p.Masked() && p.String() == s
}
