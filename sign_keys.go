package caddysession

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"golang.org/x/crypto/hkdf"
)

// The signing keys of sign. A keyring holds the keys of one handler: the
// active one, which signs, and those retired less than a token's lifetime
// ago, which the JWKS still publishes so that their last tokens verify.
// Its source says where the keys come from: PEM files (rotated by hand),
// a configured secret (a key per rotation period, derived with HKDF, so
// that every instance with the secret signs with the same key and the
// public key can still be published), or keys generated and kept in
// Caddy's storage.

// signingKey is one key of a keyring.
type signingKey struct {
	kid    string
	alg    jose.SignatureAlgorithm
	signer jose.Signer // nil for a key that is only published
	public jose.JSONWebKey
	// retired is when the key stopped signing; zero while it is active
	// or, for a key file, never.
	retired time.Time
}

// newSigningKey makes the signing key of priv (an ed25519.PrivateKey or a
// *ecdsa.PrivateKey), or a published-only key of a public key.
func newSigningKey(key any) (*signingKey, error) {
	var pub crypto.PublicKey
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case ed25519.PrivateKey:
		pub, alg = k.Public(), jose.EdDSA
	case ed25519.PublicKey:
		pub, alg = k, jose.EdDSA
	case *ecdsa.PrivateKey:
		pub, alg = k.Public(), ecAlgorithm(k.Curve)
	case *ecdsa.PublicKey:
		pub, alg = k, ecAlgorithm(k.Curve)
	default:
		return nil, fmt.Errorf("a %T cannot sign session tokens: use an Ed25519 key (EdDSA) or an ECDSA key on P-256 (ES256)", key)
	}
	if alg == "" {
		return nil, errors.New("an ECDSA key signs session tokens only on curve P-256 (ES256)")
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: string(alg), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("computing the key's thumbprint: %v", err)
	}
	// The kid is the key's RFC 7638 thumbprint: every instance that holds
	// the key names it alike, and two keys never share a kid.
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	k := &signingKey{kid: jwk.KeyID, alg: alg, public: jwk}
	switch key.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey:
		opts := (&jose.SignerOptions{}).WithType("JWT")
		k.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: jwk.KeyID}}, opts)
		if err != nil {
			return nil, fmt.Errorf("making the signer: %v", err)
		}
	}
	return k, nil
}

func ecAlgorithm(c elliptic.Curve) jose.SignatureAlgorithm {
	if c == elliptic.P256() {
		return jose.ES256
	}
	return ""
}

// ringState is what a keyring holds at one time; never changed once made.
type ringState struct {
	active *signingKey
	keys   []*signingKey // the active key first, then retired ones
	// due is when to ask the source again; zero: never.
	due time.Time
}

// keySource is where a keyring's keys come from.
type keySource interface {
	// forRealm makes the keys those of realm: a key derived or generated
	// for one realm never signs for another, so that no app that accepts
	// one site's tokens accepts another's. Call it before state.
	forRealm(realm string)
	// state returns the keys at now; prev is the state the keyring held
	// (nil at first).
	state(ctx context.Context, now time.Time, prev *ringState) (*ringState, error)
	// describe names the source in logs, without a secret.
	describe() string
}

// keyring holds the keys of one signing handler.
type keyring struct {
	source   keySource
	lifetime time.Duration // of a token: how long a retired key stays published
	logger   *zap.Logger

	mu  sync.Mutex // held while the source is asked
	cur atomic.Pointer[ringState]
}

// rotationRetry is how long a keyring whose rotation failed keeps
// signing with its previous key before it tries again.
const rotationRetry = time.Minute

// load asks the source for the first state; an error refuses the config.
func (r *keyring) load(ctx context.Context, now time.Time) error {
	st, err := r.source.state(ctx, now, nil)
	if err != nil {
		return err
	}
	r.cur.Store(st)
	return nil
}

// at returns the keys at now, rotating them if they are due. A rotation
// that fails keeps the previous keys, says so, and is tried again
// rotationRetry later.
func (r *keyring) at(now time.Time) *ringState {
	st := r.cur.Load()
	if st.due.IsZero() || now.Before(st.due) {
		return st
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st = r.cur.Load(); st.due.IsZero() || now.Before(st.due) {
		return st // another request rotated them meanwhile
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next, err := r.source.state(ctx, now, st)
	if err != nil {
		r.logger.Error("rotating the session token signing key; signing with the previous key meanwhile",
			zap.String("keys", r.source.describe()), zap.Duration("retry_in", rotationRetry), zap.Error(err))
		next = &ringState{active: st.active, keys: st.keys, due: now.Add(rotationRetry)}
	}
	r.cur.Store(next)
	return next
}

// published returns the public keys at now: the active one and those
// retired less than a token's lifetime ago.
func (r *keyring) published(now time.Time) []jose.JSONWebKey {
	st := r.at(now)
	out := make([]jose.JSONWebKey, 0, len(st.keys))
	for _, k := range st.keys {
		if k.retired.IsZero() || now.Before(k.retired.Add(r.lifetime)) {
			out = append(out, k.public)
		}
	}
	return out
}

// fileSource is a list of PEM files: the first holds the private key that
// signs, the others keys that are only published (the previous key of a
// rotation by hand), private or public.
type fileSource struct {
	files []string
}

func (s *fileSource) describe() string { return fmt.Sprintf("key files %q", s.files) }

// forRealm does nothing: a key file is the operator's key, used as given.
func (s *fileSource) forRealm(string) {}

func (s *fileSource) state(context.Context, time.Time, *ringState) (*ringState, error) {
	st := &ringState{}
	for i, name := range s.files {
		key, err := readKeyFile(name, i == 0)
		if err != nil {
			return nil, err
		}
		k, err := newSigningKey(key)
		if err != nil {
			return nil, fmt.Errorf("sign: key file %s: %v", name, err)
		}
		if i > 0 {
			k.signer = nil // published only, whatever the file holds
		}
		st.keys = append(st.keys, k)
	}
	st.active = st.keys[0]
	return st, nil
}

// readKeyFile reads the one PEM key of a file: a private key (PKCS #8, or
// SEC 1 for ECDSA), or, unless private is required, a public key (PKIX).
func readKeyFile(name string, private bool) (any, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("sign: reading key file: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("sign: key file %s holds no PEM block; write the key as PEM, e.g. `openssl genpkey -algorithm ed25519 -out %s`", name, name)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PUBLIC KEY":
		if private {
			return nil, fmt.Errorf("sign: key file %s holds a public key; the first key file signs and must hold the private key", name)
		}
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("sign: key file %s holds a %q PEM block; give a PRIVATE KEY (PKCS #8) or, after the first file, a PUBLIC KEY", name, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: key file %s: %v", name, err)
	}
	return key, nil
}

// minSecretLength is the shortest secret keys are derived from. The public
// keys are published: a short secret could be found from them offline.
const minSecretLength = 32

// secretSource derives one Ed25519 key per rotation period from a secret,
// with HKDF-SHA256: every instance that has the secret (and the same
// rotate) signs with the same key at the same time and publishes the same
// keys, with nothing stored or shared but the secret. Periods are counted
// from the Unix epoch, so keys change at the same moment everywhere.
type secretSource struct {
	secret []byte
	rotate time.Duration
	realm  string // of the handler: each realm derives keys of its own

	mu      sync.Mutex
	derived map[int64]*signingKey // the last few periods' keys
}

func (s *secretSource) describe() string { return "secret, rotated every " + s.rotate.String() }

func (s *secretSource) forRealm(realm string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.realm, s.derived = realm, nil
}

func (s *secretSource) state(_ context.Context, now time.Time, _ *ringState) (*ringState, error) {
	period := now.UnixNano() / int64(s.rotate)
	start := time.Unix(0, period*int64(s.rotate))
	active, err := s.key(period)
	if err != nil {
		return nil, err
	}
	prev, err := s.key(period - 1)
	if err != nil {
		return nil, err
	}
	retired := *prev
	retired.signer, retired.retired = nil, start
	return &ringState{active: active, keys: []*signingKey{active, &retired}, due: start.Add(s.rotate)}, nil
}

// key derives the key of a rotation period, or returns it from the cache.
func (s *secretSource) key(period int64) (*signingKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.derived[period]; ok {
		return k, nil
	}
	// The info names the realm, the period and its length, so that no two
	// realms given one secret, and no two periods of whatever length,
	// ever share a key.
	info := "caddy-session sign ed25519 v2 realm " + strconv.Quote(s.realm) + " period " + strconv.FormatInt(period, 10) + " of " + s.rotate.String()
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, s.secret, nil, []byte(info)), seed); err != nil {
		return nil, fmt.Errorf("deriving a signing key: %v", err)
	}
	k, err := newSigningKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, err
	}
	if s.derived == nil || len(s.derived) >= 4 {
		s.derived = map[int64]*signingKey{}
	}
	s.derived[period] = k
	return k, nil
}

// storageKeysPath is where generated keys are kept in Caddy's storage.
const storageKeysPath = "session/sign/keys.json"

// storageKeysLock is the storage lock taken while the keys are created or
// rotated, so that instances sharing a storage agree on one key.
const storageKeysLock = "session/sign/keys"

// storedKeys is the file of generated keys.
type storedKeys struct {
	Keys []storedKey `json:"keys"`
}

// storedKey is one generated key: its Ed25519 seed and its history.
type storedKey struct {
	Seed    []byte    `json:"seed"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"`
}

// maxRetention is how long a retired generated key is kept in storage:
// longer than any token's lifetime (maxTokenLifetime), so that a handler
// with another lifetime on the same storage still publishes it.
const maxRetention = 2 * maxTokenLifetime

// storageSource generates Ed25519 keys and keeps them in Caddy's storage:
// one active key, replaced every rotate, and the retired ones for a while.
// A rotation takes the storage's lock and reads the file again first, so
// that instances sharing a storage rotate once, to the same key.
type storageSource struct {
	storage certmagic.Storage
	rotate  time.Duration
	realm   string // of the handler: its keys are derived from the stored ones
}

// forRealm makes the keys those of realm: each stored seed is the root of
// one key per realm (realmSeed), so that the sites of a Caddy sharing its
// storage, and the file, sign with keys of their own.
func (s *storageSource) forRealm(realm string) { s.realm = realm }

// realmSeed is the seed of realm's key of a stored seed, by HKDF-SHA256.
func realmSeed(stored []byte, realm string) ([]byte, error) {
	seed := make([]byte, ed25519.SeedSize)
	info := "caddy-session sign generated ed25519 realm " + strconv.Quote(realm)
	if _, err := io.ReadFull(hkdf.New(sha256.New, stored, nil, []byte(info)), seed); err != nil {
		return nil, fmt.Errorf("deriving a signing key: %v", err)
	}
	return seed, nil
}

func (s *storageSource) describe() string {
	return "generated, in Caddy's storage at " + storageKeysPath
}

func (s *storageSource) state(ctx context.Context, now time.Time, _ *ringState) (*ringState, error) {
	file, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	if !s.due(file, now) {
		return s.ring(file)
	}
	if err := s.storage.Lock(ctx, storageKeysLock); err != nil {
		return nil, fmt.Errorf("locking the signing keys in storage: %v", err)
	}
	defer func() { _ = s.storage.Unlock(context.WithoutCancel(ctx), storageKeysLock) }()
	if file, err = s.read(ctx); err != nil { // another instance may have rotated
		return nil, err
	}
	if s.due(file, now) {
		if file, err = s.rotated(file, now); err != nil {
			return nil, err
		}
	}
	return s.ring(file)
}

// read reads the stored keys; none if there is no file yet.
func (s *storageSource) read(ctx context.Context) (*storedKeys, error) {
	data, err := s.storage.Load(ctx, storageKeysPath)
	if errors.Is(err, fs.ErrNotExist) {
		return &storedKeys{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signing keys from storage: %v", err)
	}
	var file storedKeys
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("reading the signing keys from storage at %s: %v", storageKeysPath, err)
	}
	for _, k := range file.Keys {
		if len(k.Seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("reading the signing keys from storage at %s: a seed of %d bytes, want %d", storageKeysPath, len(k.Seed), ed25519.SeedSize)
		}
	}
	return &file, nil
}

// due reports whether the file has no active key, or one to rotate.
func (s *storageSource) due(file *storedKeys, now time.Time) bool {
	active := file.active()
	return active == nil || !now.Before(active.Created.Add(s.rotate))
}

// active returns the active key: the last one not retired.
func (f *storedKeys) active() *storedKey {
	for i := len(f.Keys) - 1; i >= 0; i-- {
		if f.Keys[i].Retired.IsZero() {
			return &f.Keys[i]
		}
	}
	return nil
}

// rotated retires the active key, adds a new one, drops keys retired long
// ago, and stores the result.
func (s *storageSource) rotated(file *storedKeys, now time.Time) (*storedKeys, error) {
	next := &storedKeys{}
	for _, k := range file.Keys {
		if k.Retired.IsZero() {
			k.Retired = now
		}
		if now.Sub(k.Retired) < maxRetention {
			next.Keys = append(next.Keys, k)
		}
	}
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed) // never fails; see crypto/rand.Read
	next.Keys = append(next.Keys, storedKey{Seed: seed, Created: now})
	data, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := s.storage.Store(context.Background(), storageKeysPath, data); err != nil {
		return nil, fmt.Errorf("storing the signing keys: %v", err)
	}
	return next, nil
}

// ring makes the keyring's state of the stored keys. A key not marked
// retired beside a newer active one (written by hand) counts as retired
// when the active one was created.
func (s *storageSource) ring(file *storedKeys) (*ringState, error) {
	act := file.active()
	if act == nil {
		return nil, fmt.Errorf("the signing keys in storage at %s have no active key", storageKeysPath)
	}
	st := &ringState{due: act.Created.Add(s.rotate)}
	for i := len(file.Keys) - 1; i >= 0; i-- { // newest first
		stored := &file.Keys[i]
		seed, err := realmSeed(stored.Seed, s.realm)
		if err != nil {
			return nil, err
		}
		k, err := newSigningKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			return nil, err
		}
		if stored == act {
			st.active = k
			st.keys = append([]*signingKey{k}, st.keys...)
			continue
		}
		k.signer, k.retired = nil, stored.Retired
		if k.retired.IsZero() {
			k.retired = act.Created
		}
		st.keys = append(st.keys, k)
	}
	return st, nil
}
