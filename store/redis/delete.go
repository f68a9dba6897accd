package redis

import (
	"context"
	"fmt"
	"strings"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, hash session.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var missing bool
	_, err := s.modify(ctx, hash, func(fields map[string]string) (*change, error) {
		// A forward record is no session: it stays until its TTL.
		_, forward := fields[fieldNext]
		missing = len(fields) == 0 || forward
		if missing {
			return nil, nil
		}
		c := &change{old: hash, oldExists: true, removeOld: true}
		// A record too corrupt to read is deleted all the same: this is
		// the way out of it. Its index entry, unknown, stays until its
		// bucket drops it as expired; readers skip it before then.
		if rec, identity, err := decode(fields); err == nil {
			c.oldEntry = s.entryOf(rec, identity, hash)
		}
		return c, nil
	})
	if err == nil && missing {
		return store.ErrNotFound
	}
	return err
}

// DeleteByIdentity implements store.Store. It reads the index bucket of
// the identity and deletes each session whose entry has the identity's
// digest and whose record says it still belongs to the identity; the
// record, not the index, says whose session it is. Entries whose session
// is gone (on Cluster: not yet, or no longer, there; those stay until
// their bucket drops them) or belongs to someone else now are removed. A
// session renewed
// since the bucket was read is ended under its new ID (deleteIfOwned).
func (s *Store) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if key == "" {
		// Nothing is indexed under an empty identity key.
		return 0, nil
	}
	if err := s.migrate(ctx); err != nil {
		return 0, err
	}
	client, err := s.Client()
	if err != nil {
		return 0, redisError("reading the sessions of an identity", err)
	}
	bucket, digest := s.identityBucket(key, value)
	members, err := client.Do(ctx, client.B().Zrange().Key(bucket).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return 0, redisError("reading the sessions of an identity", err)
	}
	if s.afterIndexRead != nil {
		s.afterIndexRead()
	}
	n := 0
	for _, m := range members {
		hash, ok := entryHash(m)
		if !ok || !strings.HasSuffix(m, digest) {
			continue
		}
		deleted, err := s.deleteIfOwned(ctx, hash, realm, key, value, entry{bucket: bucket, member: m})
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// deleteIfOwned deletes the session under hash, listed by the index
// entry e, if its identity key is key with value and it is of realm or of
// none, and removes e unless the session belongs there (another realm's).
//
// A forward record under hash is followed to the successor, as Update
// follows it, at most store.MaxHops records: a renewal moved the session
// after the index was read (or between the delete's read and its write,
// which the guard then refused), and the successor, indexed since, is in
// no list this revocation holds. The successor is deleted if it is still
// the identity's session in the realm (a renewal keeps the user; a login
// as someone else does not, and that session is not this user's to end),
// and counted as the session deleted. A successor too corrupt to read is
// left alone: unlike a session listed under the identity, nothing says it
// is the identity's. A chain longer than store.MaxHops (renewals in a
// loop) is an error rather than a session silently left live: the
// revocation, tried again, finds the session by its entry.
func (s *Store) deleteIfOwned(ctx context.Context, hash session.Hash, realm, key, value string, e entry) (bool, error) {
	at := hash
	for hop := 0; ; hop++ {
		var deleted bool
		var next *session.Hash
		_, err := s.modify(ctx, at, func(fields map[string]string) (*change, error) {
			deleted, next = false, nil
			if len(fields) == 0 {
				if s.cluster {
					// On Cluster a login indexes its session before it
					// writes it (writeCluster), and nothing guards this
					// removal against that write: the entry may be of a
					// session about to be written, which would then be in
					// no index. It stays until its bucket drops it.
					return nil, nil
				}
				return &change{old: at, oldEntry: e}, nil // e, if any, is stale
			}
			rec, identity, err := decode(fields)
			switch {
			case err != nil && hop > 0:
				return nil, nil // a successor nothing says is the identity's
			case err != nil:
				// Listed under the identity: a "log out everywhere"
				// must not leave it behind.
				deleted = true
				return &change{old: at, oldExists: true, removeOld: true, oldEntry: e}, nil
			case rec.Forwarded():
				next = rec.Successor
				return &change{old: at, oldEntry: e}, nil // in no index
			}
			var indexed bool
			deleted, indexed = owns(rec, identity, realm, key, value)
			c := &change{old: at, oldExists: true, removeOld: deleted}
			switch {
			case hop > 0 && deleted:
				// The successor's own entry; e was its predecessor's.
				c.oldEntry = s.entryOf(rec, identity, at)
			case !indexed || deleted:
				// This record's entry, or a stale one.
				c.oldEntry = e
			}
			return c, nil
		})
		if err != nil || next == nil {
			return deleted && err == nil, err
		}
		if hop == store.MaxHops {
			return false, fmt.Errorf("redis session store: session %s moved on to a new ID more than %d times while its user's sessions were being ended; try again", hash.Short(), store.MaxHops)
		}
		at, e = *next, entry{}
	}
}

// owns tells whether rec, a session indexed under identity, belongs to
// the identity key with value (indexed), and whether it is to be deleted
// for a revocation in realm: it is of realm or of none. The record, not
// the index, says whose session it is.
func owns(rec *session.Record, identity, realm, key, value string) (deleted, indexed bool) {
	v, ok := rec.IndexedIdentity(key)
	indexed = identity == key && ok && v == value
	return indexed && (rec.Realm == "" || rec.Realm == realm), indexed
}
