package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// A session moves between stores by copy: it is imported into the new
// store under its hash, with its times and identity index, and left in
// the old one. Two rules keep a copy from bringing back a session that
// ended while it was made:
//
//   - Whoever ends a session during a move (Fallback) removes it from the
//     old store first, then from the new one.
//   - Whoever copies a session checks, after the import, that the old
//     store still holds it, and removes the copy if it does not.
//
// A logout that removes the session from the old store before the check
// is seen by it; one that removes it after has the new store to remove it
// from next, copy included. Neither store keeps a tombstone.

// StoredDeadlines judges a record by its stored deadlines alone, as a
// store that does not know the configuration's timeouts must, and as the
// admin API loads one before it judges it by the timeouts of the handlers
// of its realm.
var StoredDeadlines = session.Timeouts{
	Idle: 1 << 62, Absolute: 1 << 62, RememberIdle: 1 << 62, RememberAbsolute: 1 << 62,
}

// CopyStats counts what copies of sessions did.
type CopyStats struct {
	// Copied sessions were imported into the new store.
	Copied int `json:"copied"`
	// Unchanged ones were there already, exactly so (an earlier pass).
	Unchanged int `json:"unchanged"`
	// Newer ones were there already and differ: written since they were
	// copied, through the new store; the copy left them as they were.
	Newer int `json:"newer"`
	// Ended ones were ended in the old store while they were copied, and
	// their copy removed.
	Ended int `json:"ended"`
}

// Add adds the counts of o to s.
func (s *CopyStats) Add(o CopyStats) {
	s.Copied += o.Copied
	s.Unchanged += o.Unchanged
	s.Newer += o.Newer
	s.Ended += o.Ended
}

// CopyPage copies one page of the live sessions of from (List at cursor,
// up to limit) into to, never over a session to holds that differs (it
// is newer), and returns what it did and the cursor of the next page (""
// after the last). Running it again over the same sessions copies
// nothing twice, so a migration can be run again, or resumed from the
// cursor it stopped at.
func CopyPage(ctx context.Context, from, to Store, cursor string, limit int, now time.Time) (CopyStats, string, error) {
	entries, next, err := from.List(ctx, cursor, limit, now)
	if err != nil {
		return CopyStats{}, "", fmt.Errorf("listing the sessions to copy: %w", err)
	}
	stats, err := copyEntries(ctx, from, to, entries, now)
	return stats, next, err
}

// copyEntries imports entries, read from from, into to, then removes the
// copies of those that from no longer holds.
func copyEntries(ctx context.Context, from, to Store, entries []Entry, now time.Time) (CopyStats, error) {
	var stats CopyStats
	if len(entries) == 0 {
		return stats, nil
	}
	if f := testhook.CopyListed.Load(); f != nil {
		hashes := make([]string, len(entries))
		for i, e := range entries {
			hashes[i] = e.Hash.String()
		}
		(*f)(hashes)
	}
	statuses, err := to.Import(ctx, Import{Entries: entries, Now: now})
	if err != nil {
		return stats, fmt.Errorf("importing the sessions copied: %w", err)
	}
	for i, st := range statuses {
		switch st {
		case Unchanged:
			stats.Unchanged++
			continue
		case Kept:
			stats.Newer++
			continue
		}
		current, ended, err := endedIn(ctx, from, entries[i].Hash, now)
		if err != nil {
			return stats, err
		}
		if !ended {
			if err := catchUp(ctx, to, entries[i], current, now); err != nil {
				return stats, err
			}
			stats.Copied++
			continue
		}
		if err := to.Delete(ctx, entries[i].Hash); err != nil && !errors.Is(err, ErrNotFound) {
			return stats, fmt.Errorf("removing the copy of session %s, which ended while it was copied: %w", entries[i].Hash.Short(), err)
		}
		stats.Ended++
	}
	return stats, nil
}

// endedIn reports whether from no longer holds a live session under hash,
// and returns the session it holds there when it does.
func endedIn(ctx context.Context, from Store, hash session.Hash, now time.Time) (*session.Record, bool, error) {
	rec, err := from.Load(ctx, hash, now, StoredDeadlines)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("checking that session %s still exists where it was copied from: %w", hash.Short(), err)
	}
	return rec, rec.Forwarded(), nil
}

// catchUp writes to the copy of e in to what a write to the session in
// from changed between the read the copy was made of and the import,
// current being the session as from holds it after the import. A handler
// that writes to from tells the handlers that copy from it (the relay of
// a move), which write the same to their copy; but one that wrote before
// the import found no copy to write to, and the copy went on without the
// write: a key deleted in the old store (a role taken away) was back in
// the new one. The difference is applied per key, over whatever the new
// store's handlers wrote to the copy since, as one store applies two
// writes, and as the relay applies a later one. A copy that has ended or
// moved on in to since is left as it is: that end stands.
//
// A session sealed at rest is left as it was copied: its values open
// only with its ID, which no copy holds.
func catchUp(ctx context.Context, to Store, e Entry, current *session.Record, now time.Time) error {
	if current == nil || current.Sealed || e.Record.Sealed {
		return nil
	}
	p := changesSince(e.Record, current)
	if p == nil {
		return nil
	}
	_, err := to.Update(ctx, Update{
		Hash: e.Hash, HasHash: true, Patch: p,
		Identity: e.Identity, Seen: identityValue(e.Record, e.Identity),
		Realm: current.Realm, NoTouch: true, Now: now, Timeouts: StoredDeadlines,
	})
	var ruleErr *session.RuleError
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrStale):
		return nil
	case errors.As(err, &ruleErr):
		// Over a limit with what the new store's handlers wrote since:
		// the relay drops such a write too.
		return nil
	}
	return fmt.Errorf("writing to the copy of session %s what was written to it in the old store while it was copied: %w", e.Hash.Short(), err)
}

// changesSince returns the patch that turns the keys and flash values of
// was into those of now, nil if they are the same. Flash values handed
// over in between (gone from now) are not taken from the copy.
func changesSince(was, now *session.Record) *session.Patch {
	p := &session.Patch{Set: changedIn(was.Values, now.Values), Flash: changedIn(was.Flash, now.Flash)}
	for k := range was.Values {
		if _, ok := now.Values[k]; !ok {
			p.Delete = append(p.Delete, k)
		}
	}
	if p.Set == nil && p.Delete == nil && p.Flash == nil {
		return nil
	}
	slices.Sort(p.Delete)
	return p
}

// changedIn returns the entries of now that was lacks or holds otherwise,
// nil if none.
func changedIn(was, now map[string]string) map[string]string {
	var out map[string]string
	for k, v := range now {
		if old, ok := was[k]; !ok || old != v {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
