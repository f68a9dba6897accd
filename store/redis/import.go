package redis

import (
	"context"
	"fmt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Import implements store.Store. Each entry is read and written as an
// Update is (modify): the write is guarded by the ":rev" read, so that a
// request that changes the session in between is not overwritten by a
// decision made on what it replaced.
func (s *Store) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := store.CheckEntries(imp); err != nil {
		return nil, err
	}
	statuses := make([]store.ImportStatus, 0, len(imp.Entries))
	at := store.Update{Now: imp.Now}
	for _, e := range imp.Entries {
		var status store.ImportStatus
		_, err := s.modify(ctx, e.Hash, func(fields map[string]string) (*change, error) {
			var stored *session.Record
			var identity string
			if len(fields) > 0 {
				var err error
				if stored, identity, err = decode(fields); err != nil {
					return nil, fmt.Errorf("session %s: %w; delete it to go on", e.Hash.Short(), err)
				}
			}
			var o store.Outcome
			o, status = store.DecideImport(e, stored, identity, imp.Now, imp.Overwrite)
			return s.plan(at, o, stored, identity), nil
		})
		if err != nil {
			return statuses, err
		}
		statuses = append(statuses, status)
	}
	return statuses, nil
}
