package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// bucketBatch is how many index buckets List and Count read in one round
// trip.
const bucketBatch = 256

// Count implements store.Store: the index entries whose deadline is after
// now, counted by Redis (ZCOUNT) without reading a session. Scores are
// deadlines cut to the microsecond: a session within the last microsecond
// before its deadline is not counted, which only reading it could tell.
func (s *Store) Count(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.migrate(ctx); err != nil {
		return 0, err
	}
	client, err := s.Client()
	if err != nil {
		return 0, redisError("counting sessions", err)
	}
	after := "(" + micros(now)
	n := int64(0)
	for first := 0; first < buckets; first += bucketBatch {
		cmds := make(rueidis.Commands, 0, bucketBatch)
		for b := first; b < first+bucketBatch; b++ {
			cmds = append(cmds, client.B().Zcount().Key(s.BucketKey(b)).Min(after).Max("+inf").Build())
		}
		for _, res := range client.DoMulti(ctx, cmds...) {
			c, err := res.AsInt64()
			if err != nil {
				return 0, redisError("counting sessions", err)
			}
			n += c
		}
	}
	return int(n), nil
}

// List implements store.Store. Sessions come bucket by bucket of the
// index, in hash order within a bucket; the cursor is the bucket and the
// hash of the last session of the previous page, "<bucket>-<hash>".
func (s *Store) List(ctx context.Context, cursor string, limit int, now time.Time) ([]store.Entry, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("a session list needs a positive limit, not %d", limit)
	}
	bucket, after, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if cursor == "" {
		if err := s.migrate(ctx); err != nil {
			return nil, "", err
		}
	}
	client, err := s.Client()
	if err != nil {
		return nil, "", redisError("listing sessions", err)
	}
	var entries []store.Entry
	var last int // the bucket of the last entry
	for first := bucket; first < buckets; first += bucketBatch {
		hashes, err := s.bucketHashes(ctx, client, first, min(first+bucketBatch, buckets), now)
		if err != nil {
			return nil, "", err
		}
		for b := first; b < min(first+bucketBatch, buckets); b++ {
			hs := hashes[b-first]
			if b == bucket && cursor != "" {
				hs = slices.DeleteFunc(hs, func(h session.Hash) bool { return h.String() <= after.String() })
			}
			recs, err := s.liveIn(ctx, client, b, hs, now)
			if err != nil {
				return nil, "", err
			}
			for _, rec := range recs {
				if rec.Record == nil {
					continue
				}
				if len(entries) == limit {
					// Another live session follows: there is a next page.
					return entries, formatCursor(last, entries[len(entries)-1].Hash), nil
				}
				entries = append(entries, rec)
				last = b
			}
		}
	}
	return entries, "", nil
}

// bucketHashes returns the hashes of the entries of buckets [from, to)
// whose deadline is not before now's microsecond, each bucket's in hash
// order: a score is the deadline cut to the microsecond, so one equal to
// now's may be a session live until later in it, which liveIn's reading of
// the record judges.
func (s *Store) bucketHashes(ctx context.Context, client rueidis.Client, from, to int, now time.Time) ([][]session.Hash, error) {
	after := micros(now)
	cmds := make(rueidis.Commands, 0, to-from)
	for b := from; b < to; b++ {
		cmds = append(cmds, client.B().Zrange().Key(s.BucketKey(b)).Min(after).Max("+inf").Byscore().Build())
	}
	out := make([][]session.Hash, 0, to-from)
	for _, res := range client.DoMulti(ctx, cmds...) {
		members, err := res.AsStrSlice()
		if err != nil {
			return nil, redisError("listing sessions", err)
		}
		var hs []session.Hash
		for _, m := range members {
			if h, ok := entryHash(m); ok {
				hs = append(hs, h)
			}
		}
		slices.SortFunc(hs, func(a, b session.Hash) int { return slices.Compare(a[:], b[:]) })
		out = append(out, slices.Compact(hs))
	}
	return out, nil
}

// liveIn reads the sessions of hashes, entries of bucket b, and returns
// them in order: with a nil Record for one that is gone, expired at now, a
// forward record, or indexed in another bucket now (its entry here is
// stale).
func (s *Store) liveIn(ctx context.Context, client rueidis.Client, b int, hashes []session.Hash, now time.Time) ([]store.Entry, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	cmds := make(rueidis.Commands, len(hashes))
	for i, h := range hashes {
		cmds[i] = client.B().Hgetall().Key(s.SessionKey(h)).Build()
	}
	recs := make([]store.Entry, len(hashes))
	for i, res := range client.DoMulti(ctx, cmds...) {
		fields, err := res.AsStrMap()
		if err != nil {
			return nil, redisError("listing sessions", err)
		}
		if len(fields) == 0 {
			continue
		}
		rec, identity, err := decode(fields)
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", hashes[i].Short(), err)
		}
		if rec.Expired(now) || rec.Forwarded() || s.entryOf(rec, identity, hashes[i]).bucket != s.BucketKey(b) {
			continue
		}
		recs[i] = store.Entry{Hash: hashes[i], Record: rec, Identity: identity}
	}
	return recs, nil
}

func formatCursor(bucket int, h session.Hash) string {
	return fmt.Sprintf("%03x-%s", bucket, h)
}

func parseCursor(cursor string) (int, session.Hash, error) {
	if cursor == "" {
		return 0, session.Hash{}, nil
	}
	bad := fmt.Errorf("%w %q: pass back the cursor a list returned", store.ErrBadCursor, cursor)
	if len(cursor) < 5 || cursor[3] != '-' {
		return 0, session.Hash{}, bad
	}
	b, err := strconv.ParseUint(cursor[:3], 16, 16)
	if err != nil || b >= buckets {
		return 0, session.Hash{}, bad
	}
	h, err := session.ParseHash(cursor[4:])
	if err != nil {
		return 0, session.Hash{}, bad
	}
	return int(b), h, nil
}
