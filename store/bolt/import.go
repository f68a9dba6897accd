package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/store"
)

// importBatch is how many records one transaction of Import writes.
const importBatch = 20_000

// Import implements store.Store. It writes many records per transaction,
// so it loads a large number of sessions (a migration from another store,
// a benchmark's population) far faster than one Update each; a batch
// larger than importBatch takes several transactions.
func (s *Store) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := store.CheckEntries(imp); err != nil {
		return nil, err
	}
	// The records are judged as stored: touches still in memory go first,
	// and none is left to land on a record the import replaces.
	if err := s.flushTouches(); err != nil {
		return nil, err
	}
	statuses := make([]store.ImportStatus, 0, len(imp.Entries))
	for entries := imp.Entries; len(entries) > 0; {
		if err := ctx.Err(); err != nil {
			return statuses, err
		}
		n := min(len(entries), importBatch)
		var batch []store.ImportStatus
		err := s.update(func(tx *bbolt.Tx) error {
			batch = batch[:0]
			b := s.buckets(tx)
			// Imported deadlines come in any order, and pages split near
			// full would stay near empty.
			b.expiry.FillPercent = bbolt.DefaultFillPercent
			for _, e := range entries[:n] {
				stored, identity, err := b.get(e.Hash)
				if err != nil {
					return err
				}
				o, status := store.DecideImport(e, stored, identity, imp.Now, imp.Overwrite)
				if err := b.execute(o); err != nil {
					return err
				}
				batch = append(batch, status)
			}
			return nil
		})
		if err != nil {
			return statuses, fmt.Errorf("importing sessions into %s: %w", s.path, err)
		}
		statuses = append(statuses, batch...)
		entries = entries[n:]
	}
	return statuses, nil
}

// Put stores the records of entries as they are, each under its hash
// and indexed under the identity key identity, replacing any record
// already there, unchecked: for tests and for a benchmark's population,
// many records per transaction. A migration uses Import, which checks
// what it is given and keeps what differs.
func (s *Store) Put(ctx context.Context, entries []store.Entry, identity string) error {
	for len(entries) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(entries), importBatch)
		err := s.update(func(tx *bbolt.Tx) error {
			b := s.buckets(tx)
			b.expiry.FillPercent = bbolt.DefaultFillPercent
			for _, e := range entries[:n] {
				if err := b.remove(e.Hash); err != nil {
					return err
				}
				if err := b.put(e.Hash, e.Record, identity); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("putting sessions into %s: %w", s.path, err)
		}
		entries = entries[n:]
	}
	return nil
}
