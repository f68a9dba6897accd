package bolt

import (
	"bytes"
	"context"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// ListByIdentity implements store.Store. It reads the identity index
// entries of the identity, in both layouts (index.go), and collects the
// hashes of the records they lead to, reading keys only; then it reads
// those records in hash order until it has store.MaxListByIdentity live
// sessions of the identity. The records have the last word: an entry
// that only shares the digest of the identity, or leads to a record that
// no longer holds it, lists nothing. Touches not yet written (touch.go)
// are shown on the records as Load shows them, rather than written first
// as List does: this runs on requests (a device list, a login's cap), which
// should not wait for a commit.
func (s *Store) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		// Nothing is indexed under an empty identity key.
		return nil, nil
	}
	var entries []store.Entry
	err := s.db.View(func(tx *bbolt.Tx) error {
		entries = nil
		b := buckets(tx)
		for _, hash := range b.identityHashes(key, value) {
			if len(entries) == store.MaxListByIdentity {
				break
			}
			rec := listed(b.sessions.Get(hash[:]), key, value)
			if rec == nil {
				continue
			}
			// A pending touch may have stamped a realm on it.
			s.touches.overlay(hash, rec)
			if (rec.Realm == "" || rec.Realm == realm) && !rec.Expired(now) {
				entries = append(entries, store.Entry{Hash: hash, Record: rec})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// identityHashes returns the hashes of the records that the identity
// index entries of key with value lead to, sorted and each once: the
// candidates, which their records confirm or not.
func (b txBuckets) identityHashes(key, value string) []session.Hash {
	var hashes []session.Hash
	for _, prefix := range identityPrefixes(key, value) {
		c := b.identity.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if suffix := k[len(prefix):]; isEntrySuffix(suffix) {
				hashes = append(hashes, hashesUnder(b.sessions, suffix)...)
			}
		}
	}
	slices.SortFunc(hashes, func(a, b session.Hash) int { return bytes.Compare(a[:], b[:]) })
	// A record is reached twice when another one shares its hash prefix
	// and both entries are there.
	return slices.Compact(hashes)
}

// listed returns the encoded record v decoded if it is a session whose
// identity key is key with value; nil otherwise. Its realm and deadlines
// are for the caller to judge, once a pending touch is shown on it. A record too corrupt to decode is left out: it cannot say
// whose it is (DeleteByIdentity removes it all the same).
func listed(v []byte, key, value string) *session.Record {
	if v == nil || isForward(v) {
		return nil
	}
	rec, identity, err := decode(v)
	if err != nil {
		return nil
	}
	got, ok := rec.IndexedIdentity(key)
	if identity != key || !ok || got != value {
		return nil
	}
	return rec
}
