package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
)

// IDBytes is the entropy of a session ID: 256 bits from crypto/rand,
// far above OWASP's minimum of 64 bits.
const IDBytes = 32

// IDLength is the length of an encoded session ID: IDBytes in unpadded
// URL-safe base64.
const IDLength = 43

// NewID returns a fresh session ID: IDBytes random bytes, URL-safe encoded.
func NewID() string {
	var b [IDBytes]byte
	// crypto/rand.Read never returns an error on supported platforms; it
	// crashes the program irrecoverably rather than return weak bytes.
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the form of a session ID. Anything else
// presented by a client is ignored without a store lookup.
func ValidID(s string) bool {
	if len(s) != IDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Hash identifies a session in a store and in logs. It is the SHA-256 of
// the session ID, so a copy of the store, a log line or an admin listing
// opens no session: the ID cannot be recovered from it.
type Hash [sha256.Size]byte

// HashID returns the hash under which the session with this ID is stored.
func HashID(id string) Hash {
	// Through a buffer on the stack: converting a string this long to
	// []byte would allocate, on every request that presents an ID.
	var buf [64]byte
	if len(id) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], id)])
	}
	return sha256.Sum256([]byte(id))
}

// String returns the hash in lowercase hex.
func (h Hash) String() string {
	return hex.EncodeToString(h[:])
}

// Short returns the first 8 bytes of the hash in hex: enough to correlate
// log lines of one session, useless for finding the session.
func (h Hash) Short() string {
	return hex.EncodeToString(h[:8])
}

// ErrBadHash is returned by ParseHash for anything but 64 hex digits.
var ErrBadHash = errors.New("a session hash is 64 hexadecimal digits")

// ParseHash parses the hex form returned by Hash.String.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, ErrBadHash
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, ErrBadHash
	}
	return h, nil
}
