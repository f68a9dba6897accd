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
// drop. A session renewed since the bucket was read is listed under its
// new ID (successor).
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
	if s.afterIndexRead != nil {
		s.afterIndexRead()
	}
	// entries stay in hash order, without duplicates: a successor may be
	// listed by its own entry too.
	var entries []store.Entry
	add := func(h session.Hash, rec *session.Record) {
		if i, found := slices.BinarySearchFunc(entries, h, entryByHash); !found {
			entries = slices.Insert(entries, i, store.Entry{Hash: h, Record: rec})
		}
	}
	var last session.Hash // the last candidate read
	for len(hashes) > 0 && !full(entries, last) {
		batch := hashes[:min(len(hashes), identityBatch)]
		hashes = hashes[len(batch):]
		last = batch[len(batch)-1]
		cmds := make(rueidis.Commands, len(batch))
		for i, h := range batch {
			cmds[i] = client.B().Hgetall().Key(s.SessionKey(h)).Build()
		}
		for i, res := range client.DoMulti(ctx, cmds...) {
			fields, err := res.AsStrMap()
			if err != nil {
				return nil, redisError("listing the sessions of an identity", err)
			}
			h, next := batch[i], forwardedTo(fields)
			var rec *session.Record
			if next == nil {
				rec = listed(fields, realm, key, value, now)
			} else if h, rec, err = s.successor(ctx, client, *next, realm, key, value, now); err != nil {
				return nil, err
			}
			if rec != nil {
				add(h, rec)
			}
		}
	}
	return entries[:min(len(entries), store.MaxListByIdentity)], nil
}

func entryByHash(e store.Entry, h session.Hash) int { return slices.Compare(e.Hash[:], h[:]) }

// full reports whether entries hold store.MaxListByIdentity sessions
// whose hashes are not after last, the last candidate read: the list is
// then the first ones in hash order, as none of the candidates left can
// come before them. Successors found through forward records may be after
// last; they do not count.
func full(entries []store.Entry, last session.Hash) bool {
	i, found := slices.BinarySearchFunc(entries, last, entryByHash)
	if found {
		i++
	}
	return i >= store.MaxListByIdentity
}

// forwardedTo is the successor of the forward record of fields, nil if
// they are not one (or too corrupt to say).
func forwardedTo(fields map[string]string) *session.Hash {
	if _, ok := fields[fieldNext]; !ok {
		return nil
	}
	next, err := parseNext(fields)
	if err != nil {
		return nil
	}
	return next
}

// successor follows forward records from next, at most store.MaxHops of
// them, as Update does, and returns the session it reaches if listed
// would list it. A candidate whose entry the index held when it was read
// has become a forward record: a renewal moved the session since, and
// its successor, indexed after the read, is in no candidate list; leaving
// it out would hide a live session of the user from the cap on sessions
// and from the list of devices. It reads Redis, past the cache, as the
// rest of the listing does.
func (s *Store) successor(ctx context.Context, client rueidis.Client, next session.Hash, realm, key, value string, now time.Time) (session.Hash, *session.Record, error) {
	for hop := 1; hop <= store.MaxHops; hop++ {
		fields, err := client.Do(ctx, client.B().Hgetall().Key(s.SessionKey(next)).Build()).AsStrMap()
		if err != nil {
			return next, nil, redisError("listing the sessions of an identity", err)
		}
		onward := forwardedTo(fields)
		if onward == nil {
			return next, listed(fields, realm, key, value, now), nil
		}
		next = *onward
	}
	return next, nil, nil
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
