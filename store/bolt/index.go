package bolt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
)

// The index entries. Both indexes hold one key per record, with no value,
// and the key ends in the record's hash: the expiry index finds the record
// when it expires, the identity index when its user is revoked.
//
// The hash was most of those keys, so a record of codec version 3 or 4 ends
// its entries in the first hashPrefixLen bytes of its hash only (the short
// form). A reader finds the records under that prefix with a cursor in the
// sessions bucket and checks each one, as it always has: the record, not
// the index, says whose session it is and when it expires. Keys must be
// unique, though, and two records may want the same short key (the same
// deadline to the nanosecond, or the same identity, with hashes alike in
// their first 16 bytes: never by chance, but a test does it on purpose), so
// a record whose short key is taken gets the full form, which ends in the
// whole hash, and removing a record removes its full-form entry if it has
// one, else its short one.
//
// The layouts:
//
//	expiry, short     ExpiresAt (8 bytes, big-endian unix ns), hash prefix, ['f']
//	expiry, full      ExpiresAt, hash, ['f']
//	identity, short   0, digest of the identity key and value (8 bytes), hash prefix
//	identity, full    0, digest, hash
//	identity, old     uvarint length, identity key, uvarint length, value, hash
//
// The 'f' marks a forward record, which Count skips by the key's length.
// Records of codec versions 1 and 2, written before this layout, have
// full-form expiry entries and old identity entries (whose keys start with
// the length of a name, never 0); they are read as they are and move to
// the new layout when next written.
//
// The identity index keys the digest rather than the value so that its
// keys are short whatever the value, and arrive in no particular order
// whatever order users log in in: a B+tree filled in key order leaves its
// pages half full.

// hashPrefixLen is how many bytes of the hash end a short-form index key.
const hashPrefixLen = 16

// identityDigestLen is how many bytes of the identity's SHA-256 the
// identity index keys. A collision costs a decode of the other identity's
// records, never a wrong answer.
const identityDigestLen = 8

// identityMark starts the identity index keys of the new layout. An old
// key starts with the length of the identity key name, which is never
// empty.
const identityMark = 0

// entryKeys are the keys of a record's entry in one index: its entry is
// under one of them. short is nil for a record of the old layout, whose
// entry is under full.
type entryKeys struct {
	short, full []byte
}

// put adds the entry, in the short form unless another record has taken
// it.
func (k entryKeys) put(b *bbolt.Bucket) error {
	if has(b, k.short) {
		return b.Put(k.full, nil)
	}
	return b.Put(k.short, nil)
}

// delete removes the entry, in whichever form it is.
func (k entryKeys) delete(b *bbolt.Bucket) error {
	return b.Delete(k.in(b))
}

// in returns the key the entry is under in b: the full form if b holds
// it, else the short one.
func (k entryKeys) in(b *bbolt.Bucket) []byte {
	if k.short == nil || has(b, k.full) {
		return k.full
	}
	return k.short
}

// has reports whether b holds key. Get cannot tell: it returns nil for the
// empty value of an entry that a transaction has just put.
func has(b *bbolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return k != nil && bytes.Equal(k, key)
}

// expiryKeys are the expiry index keys of rec, stored under hash: its
// ExpiresAt, the hash or its prefix, and forwardMark if it is a forward
// record. oldLayout gives the full form only.
func expiryKeys(rec *session.Record, hash session.Hash, oldLayout bool) entryKeys {
	full := expiryKey(rec, hash[:])
	if oldLayout {
		return entryKeys{full: full}
	}
	return entryKeys{short: expiryKey(rec, hash[:hashPrefixLen]), full: full}
}

func expiryKey(rec *session.Record, hash []byte) []byte {
	k := make([]byte, 0, 8+len(hash)+1)
	k = binary.BigEndian.AppendUint64(k, indexNano(unixNano(rec.ExpiresAt())))
	k = append(k, hash...)
	if rec.Forwarded() {
		k = append(k, forwardMark)
	}
	return k
}

// expiryEntrySuffix is the hash or hash prefix that ends the expiry index
// key k, without the forward mark, or nil if k is of no known layout.
func expiryEntrySuffix(k []byte) []byte {
	if len(k) < 8 {
		return nil
	}
	rest := k[8:]
	if n := len(rest); (n == hashPrefixLen+1 || n == len(session.Hash{})+1) && rest[n-1] == forwardMark {
		rest = rest[:n-1]
	}
	if !isEntrySuffix(rest) {
		return nil
	}
	return rest
}

// isSessionExpiryKey reports whether k is the expiry index key of a
// session, not of a forward record, by its length alone.
func isSessionExpiryKey(k []byte) bool {
	return len(k) == 8+hashPrefixLen || len(k) == 8+len(session.Hash{})
}

// isEntrySuffix reports whether s can end an index key: a hash or a
// hash prefix.
func isEntrySuffix(s []byte) bool {
	return len(s) == hashPrefixLen || len(s) == len(session.Hash{})
}

// identityPrefixes are the starts of the identity index keys of sessions
// whose identity key is key with value: the new layout's, then the old's.
func identityPrefixes(key, value string) [2][]byte {
	return [2][]byte{identityPrefix(key, value), oldIdentityPrefix(key, value)}
}

// identityPrefix starts the new layout's identity index keys of key with
// value: the mark and the digest.
func identityPrefix(key, value string) []byte {
	return append([]byte{identityMark}, identityDigest(key, value)...)
}

// identityDigest is the digest the identity index keys an identity by. A
// test makes two identities collide through it.
var identityDigest = func(key, value string) []byte {
	h := sha256.New()
	// The length of the key makes the pair unambiguous: user=ab is not
	// use=rab.
	h.Write(appendString(nil, key))
	h.Write([]byte(value))
	return h.Sum(nil)[:identityDigestLen]
}

// oldIdentityPrefix starts the old layout's identity index keys of key with
// value. The lengths make it unambiguous: "ali" is no prefix of "alice".
func oldIdentityPrefix(key, value string) []byte {
	k := make([]byte, 0, 2*binary.MaxVarintLen64+len(key)+len(value)+len(session.Hash{}))
	k = appendString(k, key)
	return appendString(k, value)
}

// identityKeys are the identity index keys of rec, or ok false if it has
// none: no identity key is configured, or the record does not hold it.
func identityKeys(rec *session.Record, identity string, hash session.Hash, oldLayout bool) (keys entryKeys, ok bool) {
	value, ok := rec.IndexedIdentity(identity)
	if !ok {
		return entryKeys{}, false
	}
	if oldLayout {
		return entryKeys{full: append(oldIdentityPrefix(identity, value), hash[:]...)}, true
	}
	prefix := identityPrefix(identity, value)
	return entryKeys{
		short: append(prefix[:len(prefix):len(prefix)], hash[:hashPrefixLen]...),
		full:  append(prefix, hash[:]...),
	}, true
}

// oldLayout reports whether the encoded record v was written with its
// index entries in the old layout: by a version before codec version 3.
// Version 4 is indexed as version 3 is.
func oldLayout(v []byte) bool {
	return len(v) > 0 && v[0] != codecVersion && v[0] != codecVersionMeta
}

// hashesUnder returns the hashes of the records that an index entry ending
// in suffix may be the entry of: the one under the hash, for the full form,
// or every record whose hash starts with the prefix, for the short form
// (one, but for a collision). They are collected before the caller
// deletes, which bbolt cursors do not survive.
func hashesUnder(sessions *bbolt.Bucket, suffix []byte) []session.Hash {
	var hashes []session.Hash
	c := sessions.Cursor()
	for k, _ := c.Seek(suffix); k != nil && bytes.HasPrefix(k, suffix); k, _ = c.Next() {
		var h session.Hash
		if len(k) == len(h) {
			copy(h[:], k)
			hashes = append(hashes, h)
		}
	}
	return hashes
}
