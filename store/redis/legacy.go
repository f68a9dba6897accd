package redis

import (
	"context"

	"github.com/caddy-session/caddy-session/session"
)

// legacyIndexKey is layout 1's sorted set of the hex hashes of all
// sessions, every score 0.
func (s *Store) legacyIndexKey() string { return s.prefix + "sessions" }

// legacyBatch is how many layout 1 entries migrate moves at a time.
const legacyBatch = 256

// migrate moves the entries of layout 1's index of all sessions into the
// index buckets, so that List, Count and DeleteByIdentity see sessions
// written by a previous version (or by one still running beside this one
// during a rolling upgrade). Each session is read and indexed as it
// stands; an entry whose session is gone is dropped. Moving an entry
// twice does no harm, so an interrupted migration is simply done again.
// With nothing left to move it costs one command.
func (s *Store) migrate(ctx context.Context) error {
	client, err := s.Client()
	if err != nil {
		return redisError("reading the index of a previous version", err)
	}
	start := "-"
	for {
		members, err := client.Do(ctx, client.B().Zrange().Key(s.legacyIndexKey()).Min(start).Max("+").Bylex().Limit(0, legacyBatch).Build()).AsStrSlice()
		if err != nil {
			return redisError("reading the index of a previous version", err)
		}
		for _, m := range members {
			if err := s.migrateOne(ctx, m); err != nil {
				return err
			}
		}
		if len(members) < legacyBatch {
			return nil
		}
		start = "(" + members[len(members)-1]
	}
}

// migrateOne moves one layout 1 entry: the hex hash of a session.
func (s *Store) migrateOne(ctx context.Context, member string) error {
	hash, err := session.ParseHash(member)
	if err != nil {
		return s.dropLegacy(ctx, member)
	}
	var e entry
	_, err = s.modify(ctx, hash, func(fields map[string]string) (*change, error) {
		e = entry{}
		if len(fields) == 0 {
			return nil, nil
		}
		rec, identity, err := decode(fields)
		if err != nil {
			return nil, nil // left for Delete; it stays in the old index
		}
		e = s.entryOf(rec, identity, hash)
		// An entry only, under the guard of the session's read.
		return &change{old: hash, newEntry: e, now: rec.LastSeen}, nil
	})
	if err != nil {
		return err
	}
	return s.dropLegacy(ctx, member)
}

// dropLegacy removes a layout 1 entry.
func (s *Store) dropLegacy(ctx context.Context, member string) error {
	p := newOps()
	p.op("z", s.legacyIndexKey(), member)
	if _, err := s.run(ctx, p, 0); err != nil {
		return redisError("moving the index of a previous version", err)
	}
	return nil
}
