package redis

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// The index: 4096 sorted sets of entries, each a session's raw hash and the
// digest of its identity, scored by its deadline. See the package
// documentation.
const (
	buckets     = 1 << 12
	digestLen   = 8
	hashLen     = len(session.Hash{})
	entryLen    = hashLen + digestLen
	bucketInfix = "ix:"
)

// entry is a session's index entry; the zero value is none.
type entry struct {
	bucket string // the sorted set's key
	member string // the raw hash, then the identity digest
	score  string // the deadline in unix microseconds
}

func (e entry) none() bool { return e.bucket == "" }

// BucketKey returns the Redis key of index bucket b.
func (s *Store) BucketKey(b int) string {
	return fmt.Sprintf("%s%s%03x", s.prefix, bucketInfix, b)
}

// identityDigest is the digest of identity key with value.
func identityDigest(key, value string) [digestLen]byte {
	sum := sha256.Sum256([]byte(key + "\x00" + value))
	return [digestLen]byte(sum[:digestLen])
}

// bucketOf is the bucket of the first two bytes of a digest or hash.
func bucketOf(b []byte) int { return (int(b[0])<<8 | int(b[1])) >> 4 }

// entryOf is the index entry of rec stored under hash and indexed under
// identity ("" for none). A forward record has none.
func (s *Store) entryOf(rec *session.Record, identity string, hash session.Hash) entry {
	if rec == nil || rec.Forwarded() {
		return entry{}
	}
	var digest [digestLen]byte
	bucket := bucketOf(hash[:])
	if v, ok := rec.IndexedIdentity(identity); ok {
		digest = identityDigest(identity, v)
		bucket = bucketOf(digest[:])
	}
	return entry{
		bucket: s.BucketKey(bucket),
		member: string(hash[:]) + string(digest[:]),
		score:  micros(rec.ExpiresAt()),
	}
}

// identityBucket is the bucket of the sessions of identity key with
// value, and the digest their entries end with.
func (s *Store) identityBucket(key, value string) (string, string) {
	digest := identityDigest(key, value)
	return s.BucketKey(bucketOf(digest[:])), string(digest[:])
}

// entryHash is the session hash of an index entry.
func entryHash(member string) (session.Hash, bool) {
	if len(member) != entryLen {
		return session.Hash{}, false
	}
	return session.Hash([]byte(member[:hashLen])), true
}

// micros is t in unix microseconds, the index's scores: exact in a Redis
// score (a double) for the next few centuries, unlike nanoseconds.
func micros(t time.Time) string {
	switch {
	case t.Before(minTime):
		return strconv.FormatInt(minTime.UnixMicro(), 10)
	case t.After(maxTime):
		return strconv.FormatInt(maxTime.UnixMicro(), 10)
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}
