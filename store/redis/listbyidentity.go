package redis

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// identityBatch is how many sessions ListByIdentity reads in one round
// trip.
const identityBatch = 256

// ListByIdentity implements store.Store. It reads the index bucket of the
// identity, as DeleteByIdentity does (after moving layout 1's entries into
// the buckets), keeps the entries that end in the identity's digest and
// whose deadline has not passed, and reads their sessions in hash order, a
// batch at a time, until it has store.MaxListByIdentity live sessions of
// the identity. The record, not the index, says whose session it is: an
// entry of another identity that shares the digest, or a stale one, lists
// nothing, and is left for DeleteByIdentity and the bucket's writes to
// drop.
func (s *Store) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		// Nothing is indexed under an empty identity key.
		return nil, nil
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	client, err := s.Client()
	if err != nil {
		return nil, redisError("listing the sessions of an identity", err)
	}
	hashes, err := s.identityHashes(ctx, client, key, value, now)
	if err != nil {
		return nil, err
	}
	var entries []store.Entry
	for len(hashes) > 0 && len(entries) < store.MaxListByIdentity {
		batch := hashes[:min(len(hashes), identityBatch)]
		hashes = hashes[len(batch):]
		cmds := make(rueidis.Commands, len(batch))
		for i, h := range batch {
			cmds[i] = client.B().Hgetall().Key(s.SessionKey(h)).Build()
		}
		for i, res := range client.DoMulti(ctx, cmds...) {
			fields, err := res.AsStrMap()
			if err != nil {
				return nil, redisError("listing the sessions of an identity", err)
			}
			if rec := listed(fields, realm, key, value, now); rec != nil && len(entries) < store.MaxListByIdentity {
				entries = append(entries, store.Entry{Hash: batch[i], Record: rec})
			}
		}
	}
	return entries, nil
}

// identityHashes returns the hashes of the index entries of the identity
// key with value whose deadline is not before now, sorted: the
// candidates, which their records confirm or not.
func (s *Store) identityHashes(ctx context.Context, client rueidis.Client, key, value string, now time.Time) ([]session.Hash, error) {
	bucket, digest := s.identityBucket(key, value)
	// From now on inclusive: a score is the deadline cut to the
	// microsecond, and the record judges the rest.
	cmd := client.B().Zrange().Key(bucket).Min(micros(now)).Max("+inf").Byscore().Build()
	members, err := client.Do(ctx, cmd).AsStrSlice()
	if err != nil {
		return nil, redisError("listing the sessions of an identity", err)
	}
	var hashes []session.Hash
	for _, m := range members {
		if h, ok := entryHash(m); ok && strings.HasSuffix(m, digest) {
			hashes = append(hashes, h)
		}
	}
	slices.SortFunc(hashes, func(a, b session.Hash) int { return slices.Compare(a[:], b[:]) })
	return slices.Compact(hashes), nil
}

// listed returns the session of fields if it is live at now by its stored
// deadlines, of realm or of none, and its identity key is key with value;
// nil otherwise. A record too corrupt to decode is left out: it cannot say
// whose it is (DeleteByIdentity deletes it all the same).
func listed(fields map[string]string, realm, key, value string, now time.Time) *session.Record {
	if len(fields) == 0 {
		return nil
	}
	rec, identity, err := decode(fields)
	if err != nil || rec.Forwarded() || rec.Expired(now) {
		return nil
	}
	v, ok := rec.IndexedIdentity(key)
	if identity != key || !ok || v != value || rec.Realm != "" && rec.Realm != realm {
		return nil
	}
	return rec
}
