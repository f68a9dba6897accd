package caddysession

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// sign: a signed session token for the upstream. Each request of a
// session reaches the app with X-Session-Meta-Token, a compact JWS over
// the session's chosen values, its short hash, the request's host, method
// and path, and a short expiry, so that an app reachable by another way
// than through Caddy can tell a forged X-Session-User from the real one,
// and a token read from a log opens nothing elsewhere. The keys are in
// sign_keys.go, the JWKS that publishes them in jwks.go. A handler
// without sign pays one nil check on the read path.

// SignConfig configures the signed session token, X-Session-Meta-Token.
type SignConfig struct {
	// The session keys whose values the token holds, in its `session`
	// claim (keys the session lacks are left out). At most 16.
	// Default: renew_on, which includes identity_key.
	Keys []string `json:"keys,omitempty"`

	// How long a token is valid after it is issued: its `exp` is this
	// much after its `iat`, or the session's absolute deadline if that
	// comes sooner. At most 1h. Default: 60s.
	Lifetime caddy.Duration `json:"lifetime,omitempty"`

	// How often the signing key changes, for keys derived from secret or
	// generated. A retired key stays published in the JWKS for lifetime,
	// until its last token has expired. Must be longer than lifetime. Not
	// with key_files, which are rotated by changing the files.
	// Default: 720h (30 days).
	Rotate caddy.Duration `json:"rotate,omitempty"`

	// A secret of at least 32 characters from which the signing keys
	// (Ed25519) are derived with HKDF, one per rotate period: every
	// instance with the same secret signs with the same key. Placeholders
	// such as {env.SIGN_SECRET} or {file./path} are replaced when the
	// config is loaded. Not with key_files.
	Secret string `json:"secret,omitempty"`

	// PEM files of keys: the first holds the private key that signs
	// (Ed25519 for EdDSA, or ECDSA on P-256 for ES256, in PKCS #8 or
	// SEC 1), the others keys that are published in the JWKS but do not
	// sign, such as the previous key of a rotation, private or public.
	// Not with secret.
	KeyFiles []string `json:"key_files,omitempty"`
}

// Bounds of sign.
const (
	defaultTokenLifetime = time.Minute
	maxTokenLifetime     = time.Hour
	defaultRotate        = 30 * 24 * time.Hour
	// maxSignedKeys bounds the keys a token holds.
	maxSignedKeys = 16
	// maxTokenSize bounds a token, in bytes: far below the 8 KiB that
	// nginx and Apache allow a request header line by default. A session
	// whose values would make a longer token is forwarded without one,
	// which the app treats as it treats a request that never came through
	// Caddy, and a warning is logged.
	maxTokenSize = 4096
)

// metaToken is the key under whose request header the token goes:
// X-Session-Meta-Token, with the handler's prefix.
const metaToken = "meta-token"

// tokenSigner signs the tokens of one handler.
type tokenSigner struct {
	keys     []string // the keys to claim, lowercase, in config order
	identity string   // the identity key, if among keys: the token's sub
	lifetime time.Duration
	ring     *keyring
	header   string // X-Session-Meta-Token with the handler's prefix
	cache    tokenCache
	logger   *zap.Logger
}

// provisionSign checks the sign settings and loads the keys. Call it
// after the store, whose backend it warns about.
func (h *Handler) provisionSign(ctx caddy.Context) error {
	c := h.Sign
	if c == nil {
		return nil
	}
	t := &tokenSigner{
		lifetime: durationOr(c.Lifetime, defaultTokenLifetime),
		header:   h.protocol.HeaderName(metaToken),
		logger:   h.logger,
	}
	rotate := durationOr(c.Rotate, defaultRotate)
	switch {
	case t.lifetime > maxTokenLifetime:
		return fmt.Errorf("sign: lifetime %s is longer than %s; a token is short-lived, and the app gets a fresh one with every request", t.lifetime, maxTokenLifetime)
	case rotate <= t.lifetime:
		return fmt.Errorf("sign: rotate (%s) must be longer than lifetime (%s)", rotate, t.lifetime)
	case len(c.KeyFiles) > 0 && c.Secret != "":
		return fmt.Errorf("sign: give either secret or key_files, not both")
	case len(c.KeyFiles) > 0 && c.Rotate != 0:
		return fmt.Errorf("sign: rotate does not apply to key_files; rotate them by hand: put the new key first and keep the old one after it for lifetime (%s)", t.lifetime)
	}
	keys := c.Keys
	if len(keys) == 0 {
		keys = h.RenewOn
	}
	if len(keys) > maxSignedKeys {
		return fmt.Errorf("sign: keys names %d keys; a token holds at most %d", len(keys), maxSignedKeys)
	}
	for _, k := range keys {
		if !session.ValidKey(k) {
			return fmt.Errorf("sign: keys: %v", session.CheckKey(k))
		}
		if k = strings.ToLower(k); !slices.Contains(t.keys, k) {
			t.keys = append(t.keys, k)
		}
	}
	if slices.Contains(t.keys, h.identity) {
		t.identity = h.identity
	}
	var source keySource
	switch {
	case len(c.KeyFiles) > 0:
		source = &fileSource{files: c.KeyFiles}
	case c.Secret != "":
		// ReplaceKnown, as for the Redis password: a secret may hold
		// braces that are not placeholders.
		secret := caddy.NewReplacer().ReplaceKnown(c.Secret, "")
		if len(secret) < minSecretLength {
			return fmt.Errorf("sign: secret is %d characters long after its placeholders were replaced; give at least %d random ones, e.g. {env.SIGN_SECRET} set to the output of `openssl rand -base64 48`", len(secret), minSecretLength)
		}
		source = &secretSource{secret: []byte(secret), rotate: rotate}
	default:
		storage := storageOf(ctx)
		h.warnUnsharedKeys(storage)
		source = &storageSource{storage: storage, rotate: rotate}
	}
	t.ring = &keyring{source: source, lifetime: t.lifetime, logger: h.logger}
	if err := t.ring.load(ctx, clock.Now()); err != nil {
		return fmt.Errorf("sign: loading the signing keys (%s): %v", source.describe(), err)
	}
	h.signer = t
	return nil
}

// forRealm gives the signer the keys of its handler's realm, once the
// config is wired and the realm known. The keys loaded at provision,
// before, checked the sign settings and signed nothing.
func (t *tokenSigner) forRealm(ctx context.Context, realm string) error {
	t.ring.source.forRealm(realm)
	if err := t.ring.load(ctx, clock.Now()); err != nil {
		return fmt.Errorf("sign: loading the signing keys of realm %q (%s): %v", realm, t.ring.source.describe(), err)
	}
	return nil
}

// warnUnsharedKeys warns when keys generated in storage, the file system
// of this instance, sign the tokens of sessions shared through Redis: each
// instance would sign with its own key. A load is not refused for it, as
// one instance on Redis is a valid setup; a storage module (shared, as
// the instances of a cluster share their certificates) is trusted.
func (h *Handler) warnUnsharedKeys(storage certmagic.Storage) {
	if _, local := storage.(*certmagic.FileStorage); local && h.backend == "redis" {
		h.logger.Warn("sign: the signing keys are generated and kept in this instance's own storage, while the sessions are shared through Redis: every instance sharing them signs with a key of its own, and an app that fetched the keys of one instance refuses the tokens of the others; give sign a secret or key_files, or give the instances a shared storage",
			zap.String("storage", storageKeysPath))
	}
}

// storageOf returns the config's storage; Caddy's default for a handler
// provisioned outside a config (the package's tests and benchmarks),
// whose context has none.
func storageOf(ctx caddy.Context) certmagic.Storage {
	if st := configStorage(ctx); st != nil {
		return st
	}
	return caddy.DefaultStorage
}

// configStorage returns the config's storage, or nil for a handler
// provisioned outside a config.
func configStorage(ctx caddy.Context) (st certmagic.Storage) {
	defer func() {
		if recover() != nil { // caddy.Context.Storage needs a config
			st = nil
		}
	}()
	return ctx.Storage()
}

// tokenClaims are the claims of a token.
type tokenClaims struct {
	// SID is the session's short hash, as in the logs and events.
	SID string `json:"sid"`
	// Sub is the value of the identity key, if the token holds it.
	Sub string `json:"sub,omitempty"`
	// Aud is the request's Host header.
	Aud string `json:"aud"`
	// Method and Path are the request's method and its path as the
	// client sent it, percent-encoded, without the query.
	Method string `json:"method"`
	Path   string `json:"path"`
	// Session holds the values of the keys the token holds.
	Session map[string]string `json:"session"`
	IAT     int64             `json:"iat"`
	EXP     int64             `json:"exp"`
}

// forwardToken adds the signed token to the request headers hdr: the one
// signed for the same session, values, host, method and path a moment
// ago, or a new one. Call it after Scrub.
func (s *requestState) forwardToken(hdr http.Header) {
	t := s.handler.signer
	r := s.request
	st := t.ring.at(s.now)
	key := tokenKey{hash: s.hash, host: r.Host, method: r.Method, path: r.URL.EscapedPath()}
	// The method and path as the client sent them, which the app is shown
	// (REQUEST_URI through php_fastcgi), not as a handle_path, uri
	// strip_prefix, rewrite or method before this handler left them.
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		key.method, key.path = orig.Method, orig.URL.EscapedPath()
	}
	exp := t.expiry(s.now, s.handler.timeouts.AbsoluteEnd(s.record))
	if tok, ok := t.cache.get(&key, st.active, t.keys, s.record.Values, s.now, exp, t.lifetime); ok {
		if tok != nil {
			hdr[t.header] = tok
		}
		return
	}
	entry := t.sign(st.active, &key, s.record.Values, s.now, exp)
	t.cache.put(&key, entry, t.lifetime)
	if entry.token != nil {
		hdr[t.header] = entry.token
	}
}

// expiry is when a token issued at now for a session that ends at the
// latest at end expires: after lifetime, or at the session's end if that
// is sooner, so that no verifier takes it for a session past its absolute
// deadline. (The idle deadline moves with every use, and a token is for
// one request: it is not held to that one.)
func (t *tokenSigner) expiry(now, end time.Time) time.Time {
	if exp := now.Add(t.lifetime); exp.Before(end) {
		return exp
	}
	return end
}

// sign signs a token, issued at now and expiring at exp (expiry); the
// entry's token is nil if it could not be made.
func (t *tokenSigner) sign(k *signingKey, key *tokenKey, values map[string]string, now, exp time.Time) *cachedToken {
	entry := &cachedToken{kid: k.kid, issued: now, expires: exp, values: make([]string, len(t.keys))}
	c := tokenClaims{
		SID: key.hash.Short(), Aud: key.host, Method: key.method, Path: key.path,
		Session: make(map[string]string, len(t.keys)),
		// Whole seconds, rounded down: never past the session's end.
		IAT: now.Unix(), EXP: exp.Unix(),
	}
	for i, name := range t.keys {
		if v, ok := lookupKey(values, name); ok {
			c.Session[name] = v
			entry.values[i], entry.present = v, entry.present|1<<i
			if name == t.identity {
				c.Sub = v
			}
		}
	}
	tok, err := k.signCompact(c)
	switch {
	case err != nil:
		t.logger.Error("sign: signing the session token; the request goes on without X-Session-Meta-Token",
			zap.String("session", key.hash.Short()), zap.Error(err))
	case len(tok) > maxTokenSize:
		t.logger.Warn("sign: the session's values make a token longer than the limit; the request goes on without X-Session-Meta-Token: name fewer or shorter keys in sign's keys",
			zap.String("session", key.hash.Short()), zap.Int("size", len(tok)), zap.Int("limit", maxTokenSize))
	default:
		entry.token = []string{tok}
	}
	return entry
}

// signCompact signs claims as a compact JWS.
func (k *signingKey) signCompact(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// lookupKey returns the value of key, in whichever spelling of '-' and
// '_' the session holds it: they are one key.
func lookupKey(values map[string]string, key string) (string, bool) {
	if v, ok := values[key]; ok || !strings.ContainsAny(key, "-_") {
		return v, ok
	}
	for k, v := range values {
		if sameKey(k, key) {
			return v, true
		}
	}
	return "", false
}

// sameKey reports whether two lowercase keys are one, '_' read as '-'.
func sameKey(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}

// The token cache. Signing costs more than the rest of the read path
// together (BENCHMARKS.md), so a token is used again for the requests of
// the same session, values, host, method and path within a quarter of its
// lifetime: the app always gets one with at least three quarters of its
// lifetime left, or that lasts until the session's end. A change of a
// claimed value, a new ID (the key holds the session's hash), a new
// signing key and a later end of the session (remember on) each make a
// new one.

// maxCachedTokens bounds the tokens a handler keeps per generation; past
// it, tokens are signed per request, which costs time, never correctness.
const maxCachedTokens = 1 << 12

// maxCachedPath bounds the host and path of a cached token: a request
// with a longer one is signed each time, so that long URLs cannot fill
// the cache's memory.
const maxCachedPath = 512

// tokenKey is what a token is signed for.
type tokenKey struct {
	hash               session.Hash
	host, method, path string
}

// cachedToken is a token and what it was signed over.
type cachedToken struct {
	token   []string // the header's value; nil: no token (too long)
	kid     string
	issued  time.Time
	expires time.Time // its exp: issued plus lifetime, or the session's end
	values  []string  // of the signer's keys, in order
	present uint32    // bit i: the session had keys[i]
}

// tokenCache keeps recent tokens in two generations, as touchFilter keeps
// touches: it holds only recent ones and needs no sweep.
type tokenCache struct {
	mu       sync.Mutex
	cur, old map[tokenKey]*cachedToken
	rotated  time.Time
}

// reuse is how long a token is used again.
func reuse(lifetime time.Duration) time.Duration { return lifetime / 4 }

// get returns the header value of a token for key that active signed over
// the same values less than reuse ago, expiring when a token signed now
// would (exp, from tokenSigner.expiry) or less than reuse before it, never
// after it: a session whose end came sooner (remember off) gets no token
// that outlives it; ok is false if there is none.
func (c *tokenCache) get(key *tokenKey, active *signingKey, keys []string, values map[string]string, now, exp time.Time, lifetime time.Duration) (token []string, ok bool) {
	c.mu.Lock()
	e := c.cur[*key]
	if e == nil {
		e = c.old[*key]
	}
	c.mu.Unlock()
	if e == nil || e.kid != active.kid || now.Sub(e.issued) >= reuse(lifetime) || now.Before(e.issued) ||
		!now.Before(e.expires) || exp.Sub(e.expires) > reuse(lifetime) || e.expires.After(exp) {
		return nil, false
	}
	for i, name := range keys {
		v, had := lookupKey(values, name)
		if had != (e.present&(1<<i) != 0) || v != e.values[i] {
			return nil, false
		}
	}
	return e.token, true
}

// put keeps a token, unless the cache is full or its URL too long.
func (c *tokenCache) put(key *tokenKey, e *cachedToken, lifetime time.Duration) {
	if len(key.host)+len(key.path) > maxCachedPath {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || e.issued.Sub(c.rotated) >= reuse(lifetime) || e.issued.Before(c.rotated) {
		c.old, c.cur, c.rotated = c.cur, make(map[tokenKey]*cachedToken), e.issued
	}
	if len(c.cur) < maxCachedTokens {
		c.cur[*key] = e
	}
}

// unmarshalSign reads the sign block:
//
//	sign {
//		keys <key...>
//		lifetime <duration>
//		rotate <duration>
//		secret <secret>
//		key_file <pem file...>
//	}
func (h *Handler) unmarshalSign(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Sign == nil {
		h.Sign = new(SignConfig)
	}
	return eachSubdirective(d, "sign", h.Sign, signSubdirectives)
}

// signSubdirectives parse each subdirective of the sign block, with the
// dispenser on its name.
var signSubdirectives = map[string]func(c *SignConfig, d *caddyfile.Dispenser) error{
	"keys":     func(c *SignConfig, d *caddyfile.Dispenser) (err error) { c.Keys, err = parseKeys(d); return err },
	"lifetime": func(c *SignConfig, d *caddyfile.Dispenser) error { return parseDuration(d, &c.Lifetime) },
	"rotate":   func(c *SignConfig, d *caddyfile.Dispenser) error { return parseDuration(d, &c.Rotate) },
	"secret":   func(c *SignConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Secret) },
	"key_file": func(c *SignConfig, d *caddyfile.Dispenser) error {
		c.KeyFiles = d.RemainingArgs()
		if len(c.KeyFiles) == 0 {
			return d.ArgErr()
		}
		return nil
	},
}
