package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// Fallback is a store in the middle of a move to another: New holds the
// sessions, and Old those not moved yet. A session that New does not
// hold is looked up in Old and copied into New on first use (see
// CopyPage for the rules that keep a copy from reviving an ended
// session), so that the cookies users hold keep working while a
// migration copies the rest. Writes go to New only; a session that ends
// or moves to another ID is removed from Old first, so that it is never
// found there again.
type Fallback struct {
	New, Old Store
	// Identity is the identity key of the handler: a session copied on
	// first use is indexed under it in New when it holds it.
	Identity string
	// Copying, when not nil, is asked before each copy on first use
	// whether the move is still on, and holds it on until done is
	// called. Once the move is over (the reload that removes
	// fallback_store), Old is a stale copy of sessions that may have
	// ended in New since: a request still in flight from before must not
	// copy one back. Without a copy the session is not found.
	Copying func() (done func(), ok bool)
}

var _ Store = (*Fallback)(nil)

// noCopyKey marks a context whose loads through a Fallback read New only.
type noCopyKey struct{}

// NoCopy returns ctx marked so that a Fallback's Load with it, and the
// load its Update starts with, read New only and copy nothing from Old:
// for a caller that already had the session from New and asks whether it
// still lives there (the check of an open tunnel). Such a caller may run
// inside the store call of an end, in the middle of a copy: a copy of its
// own would hold Copying twice, and bring back into New a session whose
// end there is committed and whose end in Old is still to come.
func NoCopy(ctx context.Context) context.Context {
	return context.WithValue(ctx, noCopyKey{}, true)
}

// Load returns the session from New, or copies it there from Old (unless
// ctx is marked by NoCopy).
func (f *Fallback) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	rec, _, err := f.load(ctx, hash, now, t)
	return rec, err
}

// load is Load, and tells whether the record is a forward record of Old,
// which is not copied.
func (f *Fallback) load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (rec *session.Record, oldForward bool, err error) {
	rec, err = f.New.Load(ctx, hash, now, t)
	if !errors.Is(err, ErrNotFound) {
		return rec, false, err
	}
	if noCopy, _ := ctx.Value(noCopyKey{}).(bool); noCopy {
		return nil, false, ErrNotFound
	}
	if f.Copying != nil {
		done, ok := f.Copying()
		if !ok {
			return nil, false, ErrNotFound
		}
		defer done()
	}
	rec, err = f.Old.Load(ctx, hash, now, t)
	if err != nil || rec.Forwarded() {
		// A forward record of Old is not copied: it leads to a session of
		// Old, which a request in flight may still reach there.
		return rec, err == nil, err
	}
	rec, err = f.copyIn(ctx, hash, rec, now, t)
	return rec, false, err
}

// copyIn copies rec, which Old holds under hash, into New, and returns
// the session as a request opens it then.
func (f *Fallback) copyIn(ctx context.Context, hash session.Hash, rec *session.Record, now time.Time, t session.Timeouts) (*session.Record, error) {
	identity := ""
	if _, ok := rec.IdentityValue(f.Identity); ok {
		identity = f.Identity
	}
	stats, err := copyEntries(ctx, f.Old, f.New, []Entry{{Hash: hash, Record: rec, Identity: identity}}, now)
	switch {
	case err != nil:
		return nil, err
	case stats.Ended > 0:
		return nil, ErrNotFound
	case stats.Newer > 0:
		// Copied by another request or instance since New said it had
		// none, and changed there since: New's is the session.
		return f.New.Load(ctx, hash, now, t)
	}
	return rec, nil
}

// Update copies the session into New if it is still in Old only (or the
// session Old renewed it to since, followOld), applies u there, and
// removes from Old a session that u ends or moves.
func (f *Fallback) Update(ctx context.Context, u Update) (Result, error) {
	followed := false
	if u.HasHash {
		rec, oldForward, err := f.load(ctx, u.Hash, u.Now, u.Timeouts)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Result{}, err
		}
		if oldForward {
			// The ID was renewed away in Old since the request loaded the
			// session (through a handler without fallback_store, whose
			// end of the copy the relay carried to New): follow the
			// renewal, as one store's update follows its forward record.
			if u, err = f.followOld(ctx, u, rec); err != nil {
				return Result{}, err
			}
			followed = true
		}
		if u.NewHash != nil || destroys(u.Patch) {
			if err := f.removeOld(ctx, u.Hash, u.Realm, u.Identity, u.Seen, u.Now); err != nil {
				return Result{}, err
			}
		}
	}
	res, err := f.New.Update(ctx, u)
	if followed && (err == nil || errors.Is(err, ErrUnreplicated)) {
		// Made, with its Result, also when too few replicas acknowledged
		// it: the stale copy reads Followed to forget the successor.
		res.Followed = true
	}
	if u.HasHash && (errors.Is(err, ErrNotFound) || err == nil && res.Record == nil) {
		// Ended, by this update or before it: Old's copy must go too.
		if err := f.removeOld(ctx, u.Hash, u.Realm, u.Identity, u.Seen, u.Now); err != nil {
			return Result{}, err
		}
	}
	return res, err
}

// followOld follows Old's forward record fwd, of the session u presents,
// to the session Old renewed it to, copied into New on the way, and
// returns u to apply there (under the successor's hash, with the key its
// forward record carries when values are sealed), as Decide follows a
// forward record in one store: an update that only touches the session
// follows none (ErrNotFound), and one made for another user than the
// successor's, or of another realm, does not land in it (ErrStale,
// ErrNotFound). Without this, New held nothing under the old ID, and the
// update found the session ended there and removed from Old the
// successor a renewal of the same user had just made: the user was
// logged out by a request of theirs in flight across the renewal, and a
// renewal in flight ended the session instead of renewing it.
func (f *Fallback) followOld(ctx context.Context, u Update, fwd *session.Record) (Update, error) {
	if touchOnly(u) && !movesFlash(u) {
		return u, ErrNotFound
	}
	at := u.Hash
	for hop := 1; ; hop++ {
		if hop > MaxHops {
			return u, ErrNotFound
		}
		next := *fwd.Successor
		if sealing(u, fwd) {
			o := onward(u, Outcome{At: at, Next: &next}, fwd)
			if o.Err != nil {
				return u, o.Err
			}
			u = o.Onward(u)
		}
		u.Hash, at = next, next
		rec, oldForward, err := f.load(ctx, next, u.Now, u.Timeouts)
		switch {
		case err != nil:
			return u, err
		case oldForward:
			fwd = rec
			continue
		case rec.Forwarded():
			return u, nil // New's own forward record: New follows it
		case rec.Realm != "" && rec.Realm != u.Realm:
			return u, ErrNotFound
		}
		if rec.Sealed {
			key := u.sealKey()
			if key == nil {
				return u, ErrNoSealKey
			}
			rec = rec.Clone()
			if err := key.Open(next, rec); err != nil {
				return u, err
			}
		}
		if identityValue(rec, u.Identity) != u.Seen && !restoresOnly(u) {
			return u, ErrStale
		}
		return u, nil
	}
}

// removeOldOf removes from Old the sessions it renewed the session under
// hash to, when New holds that session live: of its user and realm.
func (f *Fallback) removeOldOf(ctx context.Context, hash session.Hash) error {
	rec, err := f.New.Load(Fresh(ctx), hash, time.Time{}, StoredDeadlines)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case rec.Forwarded():
		return nil
	}
	return f.removeOld(ctx, hash, rec.Realm, f.Identity, identityValue(rec, f.Identity), time.Time{})
}

// removeOld removes the session under hash from Old, if it is there, and
// the sessions Old has given its ID to since, along Old's forward records,
// as one store's update follows them: a request of the config before the
// cutover, still in flight, may have renewed in Old a session already
// copied into New, and its successor, whose cookie that renewal sent,
// would be copied back into use on its next request, after the logout.
// A successor of another realm or another user (a login from the
// session, in identity key the value seen, in realm realm) is left alone,
// as Decide leaves it: a login wins over requests in flight.
func (f *Fallback) removeOld(ctx context.Context, hash session.Hash, realm, identity, seen string, now time.Time) error {
	// Past any cache: a cached copy from before the renewal would hide
	// its forward record.
	ctx = Fresh(ctx)
	for hop := 0; ; hop++ {
		err := f.Old.Delete(ctx, hash)
		if !errors.Is(err, ErrNotFound) || hop == MaxHops {
			return err // nil when a live session was removed: it has no successor
		}
		fwd, ok, err := f.oldRecord(ctx, hash, now)
		if !ok || !fwd.Forwarded() {
			return err
		}
		next := *fwd.Successor
		rec, ok, err := f.oldRecord(ctx, next, now)
		if !ok {
			return err
		}
		if !rec.Forwarded() && (rec.Realm != "" && rec.Realm != realm || identityValue(rec, identity) != seen) {
			return nil
		}
		hash = next
	}
}

// oldRecord reads hash from Old as stored; ok is false when there is
// nothing there to follow (not found, or an error, which it returns).
func (f *Fallback) oldRecord(ctx context.Context, hash session.Hash, now time.Time) (rec *session.Record, ok bool, err error) {
	rec, err = f.Old.Load(ctx, hash, now, StoredDeadlines)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	return rec, err == nil, err
}

// Delete removes the session from Old, then from New. When Old holds no
// session under hash, the sessions it renewed it to (a request in flight
// of the config before the cutover, after the copy) go too, as far as they
// are still the user's whose session New holds (removeOld).
func (f *Fallback) Delete(ctx context.Context, hash session.Hash) error {
	errOld := f.Old.Delete(ctx, hash)
	if errors.Is(errOld, ErrNotFound) {
		if err := f.removeOldOf(ctx, hash); err != nil {
			return err
		}
	}
	if errOld != nil && !errors.Is(errOld, ErrNotFound) {
		return errOld
	}
	errNew := f.New.Delete(ctx, hash)
	if errNew != nil && !errors.Is(errNew, ErrNotFound) {
		return errNew
	}
	if errOld != nil && errNew != nil {
		return ErrNotFound
	}
	return nil
}

// DeleteByIdentity removes the user's sessions from Old, then from New,
// and returns how many sessions ended: those of New, and those of Old
// that New did not hold as well.
func (f *Fallback) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	// Listed at the zero time, every stored session is, as deleted.
	inNew, err := f.New.ListByIdentity(ctx, realm, key, value, time.Time{})
	if err != nil {
		return 0, err
	}
	inOld, err := f.Old.ListByIdentity(ctx, realm, key, value, time.Time{})
	if err != nil {
		return 0, err
	}
	both := 0
	for _, e := range inOld {
		if slices.ContainsFunc(inNew, func(n Entry) bool { return n.Hash == e.Hash }) {
			both++
		}
	}
	nOld, err := f.Old.DeleteByIdentity(ctx, realm, key, value)
	if err != nil {
		return 0, err
	}
	nNew, err := f.New.DeleteByIdentity(ctx, realm, key, value)
	if err != nil {
		return 0, err
	}
	return nNew + max(nOld-both, 0), nil
}

// ListByIdentity lists the user's sessions in New and those of Old that
// New does not hold, in hash order.
func (f *Fallback) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]Entry, error) {
	entries, err := f.New.ListByIdentity(ctx, realm, key, value, now)
	if err != nil {
		return nil, err
	}
	old, err := f.Old.ListByIdentity(ctx, realm, key, value, now)
	if err != nil {
		return nil, err
	}
	for _, e := range old {
		if !slices.ContainsFunc(entries, func(n Entry) bool { return n.Hash == e.Hash }) {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Hash.String(), b.Hash.String()) })
	return entries[:min(len(entries), MaxListByIdentity)], nil
}

// The cursors of List: New's sessions, then Old's.
const (
	cursorNew = "new:"
	cursorOld = "old:"
)

// List lists New's sessions, then those of Old that New does not hold.
func (f *Fallback) List(ctx context.Context, cursor string, limit int, now time.Time) ([]Entry, string, error) {
	if c, ok := strings.CutPrefix(cursor, cursorOld); ok {
		return f.listOld(ctx, c, limit, now)
	}
	c, ok := strings.CutPrefix(cursor, cursorNew)
	if !ok && cursor != "" {
		return nil, "", ErrBadCursor
	}
	entries, next, err := f.New.List(ctx, c, limit, now)
	switch {
	case err != nil:
		return nil, "", err
	case next != "":
		return entries, cursorNew + next, nil
	case len(entries) == 0:
		return f.listOld(ctx, "", limit, now)
	}
	return entries, cursorOld, nil
}

// listOld is a page of Old's sessions that New does not hold.
func (f *Fallback) listOld(ctx context.Context, cursor string, limit int, now time.Time) ([]Entry, string, error) {
	entries, next, err := f.Old.List(ctx, cursor, limit, now)
	if err != nil {
		return nil, "", err
	}
	kept := entries[:0]
	for _, e := range entries {
		_, err := f.New.Load(ctx, e.Hash, now, StoredDeadlines)
		switch {
		case errors.Is(err, ErrNotFound):
			kept = append(kept, e)
		case err != nil:
			return nil, "", err
		}
	}
	if next != "" {
		next = cursorOld + next
	}
	return kept, next, nil
}

// Count counts New's sessions and those of Old that New does not hold.
func (f *Fallback) Count(ctx context.Context, now time.Time) (int, error) {
	n, err := f.New.Count(ctx, now)
	if err != nil {
		return 0, err
	}
	for cursor := ""; ; {
		entries, next, err := f.listOld(ctx, cursor, 1000, now)
		if err != nil {
			return 0, err
		}
		n += len(entries)
		if next == "" {
			return n, nil
		}
		cursor, _ = strings.CutPrefix(next, cursorOld)
	}
}

// Import imports into New, each entry judged by what a request would
// open under its hash: New's record, or else Old's. Old's session is
// copied into New first (as Load does), so that New's import keeps it
// when it differs (unless Overwrite) or finds it unchanged; Old's forward
// record (the ID was renewed away in Old) keeps the entry out, as
// DecideImport keeps a forward record, even under Overwrite. Judged by
// New alone, an import replaced a session used in Old since the export
// without Overwrite, and stored again an ID that Old had retired.
func (f *Fallback) Import(ctx context.Context, imp Import) ([]ImportStatus, error) {
	if err := CheckEntries(imp); err != nil {
		return nil, err
	}
	statuses := make([]ImportStatus, len(imp.Entries))
	rest := imp
	rest.Entries = nil
	var at []int // the place in imp.Entries of each of rest.Entries
	for i, e := range imp.Entries {
		// Past any cache: a cached copy from before a renewal would hide
		// its forward record.
		rec, err := f.Load(Fresh(ctx), e.Hash, imp.Now, StoredDeadlines)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			// Nothing is written yet but copies, which Load makes anyway.
			return nil, fmt.Errorf("reading session %s before importing it: %w", e.Hash.Short(), err)
		case rec.Forwarded():
			statuses[i] = Kept
			continue
		}
		rest.Entries = append(rest.Entries, e)
		at = append(at, i)
	}
	got, err := f.New.Import(ctx, rest)
	var refused *ImportError
	if errors.As(err, &refused) {
		return nil, &ImportError{Index: at[refused.Index], Err: refused.Err}
	}
	for j, st := range got {
		statuses[at[j]] = st
	}
	if err != nil {
		// The entries before the first that New did not get to are done.
		done := len(imp.Entries)
		if len(got) < len(at) {
			done = at[len(got)]
		}
		return statuses[:done], err
	}
	return statuses, nil
}

// Close closes nothing: each store is closed by whoever opened it.
func (f *Fallback) Close() error { return nil }
