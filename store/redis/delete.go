package redis

import (
	"context"
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
// is gone or belongs to someone else now are removed.
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

// deleteIfOwned deletes the session under hash if its identity key is key
// with value and it is of realm or of none, and removes its index entry
// unless the session belongs there (another realm's).
func (s *Store) deleteIfOwned(ctx context.Context, hash session.Hash, realm, key, value string, e entry) (bool, error) {
	var deleted bool
	_, err := s.modify(ctx, hash, func(fields map[string]string) (*change, error) {
		var indexed bool
		deleted, indexed = owns(fields, realm, key, value)
		c := &change{old: hash, oldExists: deleted, removeOld: deleted}
		if !indexed || deleted {
			// This record's entry, or a stale one.
			c.oldEntry = e
		}
		return c, nil
	})
	return deleted && err == nil, err
}

// owns tells whether the session of fields belongs to the identity key
// with value (indexed), and whether it is to be deleted for a revocation
// in realm: it is of realm or of none. The record, not the index, says
// whose session it is. A record too corrupt to read is deleted: it is
// indexed under the identity, and a "log out everywhere" must not leave it
// behind.
func owns(fields map[string]string, realm, key, value string) (deleted, indexed bool) {
	if len(fields) == 0 {
		return false, false
	}
	rec, identity, err := decode(fields)
	if err != nil {
		return true, true
	}
	v, ok := rec.IndexedIdentity(key)
	indexed = identity == key && ok && v == value && !rec.Forwarded()
	return indexed && (rec.Realm == "" || rec.Realm == realm), indexed
}
