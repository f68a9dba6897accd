package session

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Values sealed at rest (seal_values). A sealed record holds, instead of
// each value, flash value and piece of client data (the User-Agent, the
// client's network), that value encrypted under a key that only the
// session's raw ID gives:
//
//	key    = HKDF-SHA256(secret = the ID as the cookie holds it (43 ASCII
//	         bytes), salt = "caddy-session seal", info = "values v1"),
//	         32 bytes
//	sealed = 0x01 || nonce (24 random bytes) ||
//	         XChaCha20-Poly1305(key, nonce, value, associated data)
//	associated data = the session hash (32 bytes: SHA-256 of the ID)
//	         || the field's name: "v:" and the key for a value, "f:" and
//	         the key for a flash value, "m:user-agent" for the User-Agent,
//	         "m:client-net" for the client's network (bind ip),
//	         "m:successor" for the key a forward record carries
//
// The store keeps the hash of the ID, never the ID, so a copy of it opens
// no value; the associated data binds each ciphertext to its field and its
// session, so none can be moved to another. A holder of the ID (the
// browser, an upstream given the cookie) can open them all. Keys, times,
// the realm and the flags of a record stay plain.

// SealVersion is the first byte of every sealed field.
const SealVersion = 1

// SealOverhead is how many bytes sealing adds to a value.
const SealOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// The names of the sealed fields, in the associated data.
const (
	sealValuePrefix = "v:"
	sealFlashPrefix = "f:"
	sealUserAgent   = "m:user-agent"
	sealClientNet   = "m:client-net"
	sealSuccessor   = "m:successor"
)

// ErrSealed is returned when a sealed field cannot be opened: the key is
// not the session's, or the field was changed or moved.
var ErrSealed = errors.New("a sealed session value does not open with the session's key")

// SealKey seals and opens the fields of one session. Derive it from the
// raw ID with DeriveSealKey; it is safe for concurrent use.
type SealKey struct {
	raw  [chacha20poly1305.KeySize]byte
	aead cipher.AEAD
}

// DeriveSealKey returns the key of the session whose raw ID is id.
func DeriveSealKey(id string) *SealKey {
	raw, err := hkdf.Key(sha256.New, []byte(id), []byte("caddy-session seal"), "values v1", chacha20poly1305.KeySize)
	if err != nil {
		// Only a length beyond 255 hashes fails.
		panic(err)
	}
	return sealKeyOf([chacha20poly1305.KeySize]byte(raw))
}

func sealKeyOf(raw [chacha20poly1305.KeySize]byte) *SealKey {
	aead, err := chacha20poly1305.NewX(raw[:])
	if err != nil {
		panic(err) // the size is right by its type
	}
	return &SealKey{raw: raw, aead: aead}
}

// seal returns v sealed as the field of the session under hash.
func (k *SealKey) seal(hash Hash, field, v string) string {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, SealOverhead+len(v))
	out[0] = SealVersion
	nonce := out[1:]
	_, _ = rand.Read(nonce)
	var ad [adRoom]byte
	return string(k.aead.Seal(out, nonce, []byte(v), associated(&ad, hash, field)))
}

// open returns the value that seal sealed as the field of the session
// under hash.
func (k *SealKey) open(hash Hash, field, sealed string) (string, error) {
	if len(sealed) < SealOverhead || sealed[0] != SealVersion {
		return "", fmt.Errorf("%w: %q is no sealed field of a known version", ErrSealed, field)
	}
	// One copy of the sealed bytes, opened in place.
	b := []byte(sealed)
	box := b[1+chacha20poly1305.NonceSizeX:]
	var ad [adRoom]byte
	v, err := k.aead.Open(box[:0], b[1:1+chacha20poly1305.NonceSizeX], box, associated(&ad, hash, field))
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrSealed, field)
	}
	return string(v), nil
}

// adRoom is room on the stack for the associated data of a field: the
// hash and a name of at most a prefix and a 64-byte key.
const adRoom = len(Hash{}) + 2 + 64

// associated is the associated data of the field of the session under
// hash, in room when it fits.
func associated(room *[adRoom]byte, hash Hash, field string) []byte {
	return append(append(room[:0], hash[:]...), field...)
}

// SealSuccessor returns next, the key of a session's successor, sealed
// under k for the forward record stored under hash (Record.SuccessorKey).
func (k *SealKey) SealSuccessor(hash Hash, next *SealKey) string {
	return k.seal(hash, sealSuccessor, string(next.raw[:]))
}

// OpenSuccessor returns the key that the forward record rec, stored under
// hash, carries for its successor, opened with k.
func (k *SealKey) OpenSuccessor(hash Hash, rec *Record) (*SealKey, error) {
	raw, err := k.open(hash, sealSuccessor, rec.SuccessorKey())
	if err != nil {
		return nil, err
	}
	if len(raw) != chacha20poly1305.KeySize {
		return nil, fmt.Errorf("%w: the successor's key is %d bytes", ErrSealed, len(raw))
	}
	return sealKeyOf([chacha20poly1305.KeySize]byte([]byte(raw))), nil
}

// Open replaces the sealed values, flash values, User-Agent and client
// network of rec, a record stored under hash, with what they hold, and
// clears Sealed and the identity tag. A record that is not sealed is left
// as it is. On an error rec is left half opened: open a copy (Clone) when
// that matters.
func (k *SealKey) Open(hash Hash, rec *Record) error {
	if !rec.Sealed {
		return nil
	}
	for f, v := range rec.Values {
		p, err := k.open(hash, sealValuePrefix+f, v)
		if err != nil {
			return err
		}
		rec.Values[f] = p
	}
	for f, v := range rec.Flash {
		p, err := k.open(hash, sealFlashPrefix+f, v)
		if err != nil {
			return err
		}
		rec.Flash[f] = p
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{sealUserAgent, &rec.UserAgent}, {sealClientNet, &rec.ClientNet}} {
		if *f.v == "" {
			continue
		}
		p, err := k.open(hash, f.name, *f.v)
		if err != nil {
			return err
		}
		*f.v = p
	}
	rec.Sealed = false
	rec.SetIdentityTag("")
	return nil
}

// SealValue returns the value v of key sealed for the session under hash.
func (k *SealKey) SealValue(hash Hash, key, v string) string {
	return k.seal(hash, sealValuePrefix+key, v)
}

// SealFlash returns the flash value v of key sealed for the session under
// hash.
func (k *SealKey) SealFlash(hash Hash, key, v string) string {
	return k.seal(hash, sealFlashPrefix+key, v)
}

// SealUserAgent returns the User-Agent ua sealed for the session under
// hash; "" stays "".
func (k *SealKey) SealUserAgent(hash Hash, ua string) string {
	if ua == "" {
		return ""
	}
	return k.seal(hash, sealUserAgent, ua)
}

// SealClientNet returns the client network n (bind ip) sealed for the
// session under hash; "" stays "".
func (k *SealKey) SealClientNet(hash Hash, n string) string {
	if n == "" {
		return ""
	}
	return k.seal(hash, sealClientNet, n)
}

// IndexKey makes the keyed hashes under which the identity index finds
// the sessions of a user when values are sealed (Record.IdentityTag): a
// copy of the store must not let anyone test guesses of user names against
// it, as a plain hash of the name would.
type IndexKey struct {
	secret []byte
}

// MinIndexSecret is the fewest bytes an index secret may have.
const MinIndexSecret = 32

// NewIndexKey returns the index key of secret, which must be at least
// MinIndexSecret bytes.
func NewIndexKey(secret []byte) (*IndexKey, error) {
	if len(secret) < MinIndexSecret {
		return nil, fmt.Errorf("the index secret is %d bytes; it needs at least %d, such as 32 random bytes in base64 (openssl rand -base64 32)", len(secret), MinIndexSecret)
	}
	return &IndexKey{secret: append([]byte(nil), secret...)}, nil
}

// Tag is the keyed hash of the identity key with value: HMAC-SHA256 under
// the secret of the key's length (one byte), the key and the value, in
// unpadded base64url.
func (x *IndexKey) Tag(key, value string) string {
	m := hmac.New(sha256.New, x.secret)
	m.Write([]byte{byte(len(key))})
	m.Write([]byte(key))
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Equal reports whether x and y make the same keyed hashes: handlers that
// read their index secret from one place (Caddy's storage, one variable)
// each hold a key of their own.
func (x *IndexKey) Equal(y *IndexKey) bool {
	return hmac.Equal(x.secret, y.secret)
}

// IdentityValue is the value of the identity key in rec, held in either
// spelling of '_' and '-' (LookupKey): the config names the key one way,
// and the app may set it the other way, which is the same key to the
// handler. Every place that asks whose session rec is asks here, so that
// the handler, the identity index and the stores agree. ok is false when
// key is "" or rec does not hold it. In a sealed record the value is
// sealed.
func (r *Record) IdentityValue(key string) (value string, ok bool) {
	if key == "" {
		return "", false
	}
	_, value, ok = LookupKey(r.Values, key)
	return value, ok
}

// IndexedIdentity is the value the identity index keeps rec under for the
// identity key: the value of the key (IdentityValue), or, in a sealed
// record, its IdentityTag; ok is false when there is none to index.
func (r *Record) IndexedIdentity(key string) (value string, ok bool) {
	value, ok = r.IdentityValue(key)
	if !ok || !r.Sealed {
		return value, ok
	}
	if r.IdentityTag() == "" {
		return "", false
	}
	return r.IdentityTag(), true
}

// SealInfo is what a sealed record keeps beside its sealed fields.
type SealInfo struct {
	// IdentityTag is, in a sealed record that holds the identity key, the
	// keyed hash of its value (IndexKey.Tag) that the identity index keys
	// the record by, since the value itself is sealed.
	IdentityTag string
	// SuccessorKey is, in a forward record of a sealed session, the key of
	// the successor sealed under this record's own (SealKey.SealSuccessor),
	// so that a request that loaded the session before its rotation can
	// still write to it.
	SuccessorKey string
}

// IdentityTag is the record's SealInfo.IdentityTag, "" if none.
func (r *Record) IdentityTag() string {
	if r.Seal == nil {
		return ""
	}
	return r.Seal.IdentityTag
}

// SuccessorKey is the record's SealInfo.SuccessorKey, "" if none.
func (r *Record) SuccessorKey() string {
	if r.Seal == nil {
		return ""
	}
	return r.Seal.SuccessorKey
}

// SetIdentityTag sets the record's identity tag ("" for none).
func (r *Record) SetIdentityTag(tag string) { r.setSeal(tag, r.SuccessorKey()) }

// SetSuccessorKey sets the key a forward record carries ("" for none).
func (r *Record) SetSuccessorKey(key string) { r.setSeal(r.IdentityTag(), key) }

// setSeal replaces Seal, which records that Clone copied share, rather
// than change it; with nothing to keep, it is nil.
func (r *Record) setSeal(tag, key string) {
	if tag == "" && key == "" {
		r.Seal = nil
		return
	}
	r.Seal = &SealInfo{IdentityTag: tag, SuccessorKey: key}
}
