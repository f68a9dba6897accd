package caddysession

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// signedRequest runs a request for rawURL with the session id through h
// at now, and returns the token the next handler got ("" for none).
func signedRequest(t *testing.T, h *Handler, id, method, rawURL string, now time.Time) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	r := newRequestAs(method, u, browserHeader(id))
	hash := session.HashID(id)
	rec, err := h.store.Load(r.Context(), hash, now, h.timeouts)
	if err != nil {
		t.Fatal(err)
	}
	s := &requestState{handler: h, request: r, now: now, hash: hash, record: rec}
	hdr := http.Header{}
	s.forwardToken(hdr)
	return hdr.Get(h.protocol.HeaderName(metaToken))
}

// verifyToken checks token against the handler's published keys at now,
// as an app would, and returns its claims.
func verifyToken(t *testing.T, h *Handler, token string, now time.Time) (tokenClaims, jose.Header, error) {
	t.Helper()
	var claims tokenClaims
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256})
	if err != nil {
		return claims, jose.Header{}, err
	}
	header := tok.Headers[0]
	set, _ := keySet([]*Handler{h}, nil, false)
	keys := set.Key(header.KeyID)
	if len(keys) != 1 {
		return claims, header, &unknownKID{header.KeyID}
	}
	var std jwt.Claims
	if err := tok.Claims(keys[0].Key, &std, &claims); err != nil {
		return claims, header, err
	}
	return claims, header, std.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{claims.Aud}, Time: now}, 0)
}

// tamper replaces from with to in the payload of token, keeping its
// header and signature.
func tamper(t *testing.T, token, from, to string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), from) {
		t.Fatalf("the payload %s (%v) does not hold %q", payload, err, from)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), from, to, 1)))
	return strings.Join(parts, ".")
}

type unknownKID struct{ kid string }

func (e *unknownKID) Error() string { return "no published key has kid " + e.kid }

// TestSignedTokenClaims checks what a token holds, and that it verifies
// against the published keys until it expires, and not after.
func TestSignedTokenClaims(t *testing.T) {
	h, id := benchHandlerWith(t, &Handler{Sign: &SignConfig{Secret: benchSecret, Keys: []string{"user", "roles", "absent"}}})
	now := time.Now()
	token := signedRequest(t, h, id, http.MethodPost, "http://app.example.com:8080/a%20b/c?q=1", now)
	claims, header, err := verifyToken(t, h, token, now)
	if err != nil {
		t.Fatalf("the token does not verify: %v", err)
	}
	want := tokenClaims{
		SID: session.HashID(id).Short(), Sub: benchValues["user"], Aud: "app.example.com:8080",
		Method: "POST", Path: "/a%20b/c",
		Session: map[string]string{"user": benchValues["user"], "roles": benchValues["roles"]},
		IAT:     now.Unix(), EXP: now.Add(time.Minute).Unix(),
	}
	if claims.SID != want.SID || claims.Sub != want.Sub || claims.Aud != want.Aud || claims.Method != want.Method ||
		claims.Path != want.Path || !maps.Equal(claims.Session, want.Session) || claims.IAT != want.IAT || claims.EXP != want.EXP {
		t.Fatalf("claims = %+v, want %+v", claims, want)
	}
	if header.Algorithm != "EdDSA" || header.KeyID == "" || header.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header = %+v, want alg EdDSA, typ JWT and a kid", header)
	}
	if strings.Contains(token, id) {
		t.Fatal("the token holds the raw session ID")
	}
	if _, _, err := verifyToken(t, h, token, now.Add(time.Minute)); err == nil {
		t.Fatal("the token still verifies once expired")
	}
	// A token whose payload was changed, its signature kept.
	if _, _, err := verifyToken(t, h, tamper(t, token, benchValues["user"], "mallory"), now); err == nil {
		t.Fatal("a tampered token verifies")
	}
}

// TestSignedTokenCache drives the token cache request by request, with
// the time given: a token is used again only for the same session, values
// of the claimed keys, host, method and path, within a quarter of its
// lifetime, and with the same signing key.
func TestSignedTokenCache(t *testing.T) {
	type req struct {
		id, method, url string
		at              time.Duration // after the first request
	}
	// The first request is at the start of a rotation period plus 10s.
	rows := []struct {
		name   string
		change func(t *testing.T, h *Handler, id string) // before the second request
		second req                                       // "" fields are the first request's
		same   bool
	}{
		{name: "the same request a second later", second: req{at: time.Second}, same: true},
		{name: "the same request just before a quarter of the lifetime", second: req{at: 15*time.Second - 1}, same: true},
		{name: "a quarter of the lifetime later", second: req{at: 15 * time.Second}},
		{name: "another path", second: req{url: "http://app.example.com/other"}},
		{name: "another query, same path", second: req{url: "http://app.example.com/page?x=2"}, same: true},
		{name: "another method", second: req{method: http.MethodPost}},
		{name: "another host", second: req{url: "http://evil.example.com/page"}},
		{name: "another session", second: req{id: "other"}},
		{name: "a claimed value changed", second: req{}, change: setValue("roles", "viewer")},
		{name: "a claimed key removed", second: req{}, change: deleteValue("roles")},
		{name: "an unclaimed value changed", second: req{}, change: setValue("cart", "sku-9"), same: true},
		{name: "the signing key rotated", second: req{at: time.Hour}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			// The requests run up to 70 minutes after the sessions are
			// created (at a rotation boundary of the clock): timeouts
			// longer than that keep the test from depending on the hour.
			h, id := benchHandlerWith(t, &Handler{
				Sign:        &SignConfig{Secret: benchSecret, Keys: []string{"user", "roles"}, Rotate: caddy.Duration(time.Hour)},
				IdleTimeout: caddy.Duration(3 * time.Hour), AbsoluteTimeout: caddy.Duration(6 * time.Hour),
			})
			otherID, _ := createSession(t, h, benchValues)
			start := time.Now().Truncate(time.Hour).Add(time.Hour - 10*time.Second) // 10s before a rotation: see "rotated"
			if row.second.at != time.Hour {
				start = start.Add(20 * time.Second) // 10s into the period
			}
			first := signedRequest(t, h, id, http.MethodGet, "http://app.example.com/page", start)
			if first == "" {
				t.Fatal("no token")
			}
			second := row.second
			switch second.id {
			case "":
				second.id = id
			case "other":
				second.id = otherID
			}
			if second.method == "" {
				second.method = http.MethodGet
			}
			if second.url == "" {
				second.url = "http://app.example.com/page"
			}
			if second.at == time.Hour {
				second.at = 11 * time.Second // across the rotation, within the reuse window
			}
			if row.change != nil {
				row.change(t, h, id)
			}
			now := start.Add(second.at)
			got := signedRequest(t, h, second.id, second.method, second.url, now)
			if (got == first) != row.same {
				t.Fatalf("the second request got the first's token: %v, want %v", got == first, row.same)
			}
			if _, _, err := verifyToken(t, h, got, now); err != nil {
				t.Fatalf("the second token does not verify: %v", err)
			}
		})
	}
}

// createSession stores a session with values in h's store.
func createSession(t *testing.T, h *Handler, values map[string]string) (string, session.Hash) {
	t.Helper()
	id, hash := newSessionID()
	_, err := h.store.Update(context.Background(), store.Update{
		NewHash:  hash,
		Patch:    &session.Patch{Set: maps.Clone(values)},
		Identity: h.identity, Now: time.Now(), Timeouts: h.timeouts, Limits: h.limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, *hash
}

func setValue(key, value string) func(t *testing.T, h *Handler, id string) {
	return patchSession(&session.Patch{Set: map[string]string{key: value}})
}

func deleteValue(key string) func(t *testing.T, h *Handler, id string) {
	return patchSession(&session.Patch{Delete: []string{key}})
}

func patchSession(p *session.Patch) func(t *testing.T, h *Handler, id string) {
	return func(t *testing.T, h *Handler, id string) {
		t.Helper()
		_, err := h.store.Update(context.Background(), store.Update{
			Hash: session.HashID(id), HasHash: true, Patch: p,
			Identity: h.identity, Now: time.Now(), Timeouts: h.timeouts, Limits: h.limits,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeyringRotation rotates the keys of a secret and of generated keys
// by the time given, and checks which key signs and which are published:
// a retired key until a token's lifetime after its retirement, and the
// same keys for every instance with the same secret or storage.
func TestKeyringRotation(t *testing.T) {
	const rotate, lifetime = time.Hour, time.Minute
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	sources := map[string]func() keySource{
		"secret":  func() keySource { return &secretSource{secret: []byte(benchSecret), rotate: rotate} },
		"storage": func() keySource { return &storageSource{storage: storage, rotate: rotate} },
	}
	for name, source := range sources {
		t.Run(name, func(t *testing.T) {
			// Two instances, and the second starts a little later. start
			// is when the first key became active.
			start := time.Now().Truncate(rotate)
			if name == "storage" {
				start = time.Now() // the first key is created at its load
			}
			a := &keyring{source: source(), lifetime: lifetime, logger: zap.NewNop()}
			b := &keyring{source: source(), lifetime: lifetime, logger: zap.NewNop()}
			if err := a.load(context.Background(), start); err != nil {
				t.Fatal(err)
			}
			if err := b.load(context.Background(), start.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			k1 := a.at(start.Add(lifetime)).active.kid
			steps := []struct {
				at        time.Duration
				active    string // "k1", or "new" for the key after k1
				published []string
			}{
				{at: lifetime, active: "k1", published: []string{"k1"}}, // the secret's previous key is gone
				{at: rotate - time.Second, active: "k1", published: []string{"k1"}},
				{at: rotate, active: "new", published: []string{"new", "k1"}},
				{at: rotate + lifetime - time.Second, active: "new", published: []string{"new", "k1"}},
				{at: rotate + lifetime, active: "new", published: []string{"new"}},
			}
			var k2 string
			for _, step := range steps {
				now := start.Add(step.at)
				for i, r := range []*keyring{a, b} {
					active := r.at(now).active.kid
					if step.active == "new" && k2 == "" {
						k2 = active
					}
					want := map[string]string{"k1": k1, "new": k2}
					if active != want[step.active] || active == "" {
						t.Fatalf("at %s instance %d signs with %s, want %s (%s)", step.at, i, active, want[step.active], step.active)
					}
					var got []string
					for _, k := range r.published(now) {
						got = append(got, k.KeyID)
					}
					var published []string
					for _, p := range step.published {
						published = append(published, want[p])
					}
					if strings.Join(got, " ") != strings.Join(published, " ") {
						t.Fatalf("at %s instance %d publishes %v, want %v", step.at, i, got, step.published)
					}
				}
			}
			if k2 == k1 {
				t.Fatal("the rotation kept the key")
			}
			// A third instance loaded after the rotation agrees.
			c := &keyring{source: source(), lifetime: lifetime, logger: zap.NewNop()}
			if err := c.load(context.Background(), start.Add(rotate+time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := c.at(start.Add(rotate + time.Second)).active.kid; got != k2 {
				t.Fatalf("an instance loaded after the rotation signs with %s, want %s", got, k2)
			}
		})
	}
	t.Run("another secret, other keys", func(t *testing.T) {
		now := time.Now()
		a, _ := (&secretSource{secret: []byte(benchSecret), rotate: rotate}).state(context.Background(), now, nil)
		b, _ := (&secretSource{secret: []byte(benchSecret + "!"), rotate: rotate}).state(context.Background(), now, nil)
		if a.active.kid == b.active.kid {
			t.Fatal("two secrets derive the same key")
		}
	})
	// Each realm signs with keys of its own, from one secret or one
	// storage, so that no site's app accepts another's tokens; the
	// instances of one realm agree.
	for name, source := range sources {
		t.Run("another realm, other keys: "+name, func(t *testing.T) {
			now := time.Now()
			kids := map[string]string{}
			for _, realm := range []string{"a.example.com@:443", "b.example.com@:443", "a.example.com@:443 again"} {
				src := source()
				src.forRealm(strings.TrimSuffix(realm, " again"))
				st, err := src.state(context.Background(), now, nil)
				if err != nil {
					t.Fatal(err)
				}
				kids[realm] = st.active.kid
				for _, k := range st.keys[1:] {
					if k.kid == kids["a.example.com@:443"] && realm == "b.example.com@:443" {
						t.Fatalf("realm %s publishes the key of another", realm)
					}
				}
			}
			if kids["a.example.com@:443"] == kids["b.example.com@:443"] {
				t.Fatalf("two realms sign with one key: %v", kids)
			}
			if kids["a.example.com@:443"] != kids["a.example.com@:443 again"] {
				t.Fatalf("two instances of one realm sign with other keys: %v", kids)
			}
		})
	}
}

// failingStorage is a storage whose writes fail.
type failingStorage struct{ certmagic.Storage }

func (failingStorage) Store(context.Context, string, []byte) error { return os.ErrPermission }

// TestKeyringRotationFailureKeepsSigning checks that a rotation the
// storage refuses keeps the previous key signing and is logged.
func TestKeyringRotationFailureKeepsSigning(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	core, logs := observer.New(zap.ErrorLevel)
	r := &keyring{source: &storageSource{storage: storage, rotate: time.Hour}, lifetime: time.Minute, logger: zap.New(core)}
	start := time.Now()
	if err := r.load(context.Background(), start); err != nil {
		t.Fatal(err)
	}
	k1 := r.at(start).active.kid
	r.source.(*storageSource).storage = failingStorage{storage}
	if got := r.at(start.Add(time.Hour)).active.kid; got != k1 {
		t.Fatalf("a failed rotation signs with %s, want the previous key %s", got, k1)
	}
	if logs.FilterMessageSnippet("rotating the session token signing key").Len() != 1 {
		t.Fatalf("the failure was not logged once: %v", logs.All())
	}
	if got := r.at(start.Add(time.Hour + time.Second)).active.kid; got != k1 || logs.Len() != 1 {
		t.Fatal("the rotation was tried again before rotationRetry")
	}
	r.source.(*storageSource).storage = storage
	if got := r.at(start.Add(time.Hour + rotationRetry)).active.kid; got == k1 {
		t.Fatal("the rotation was not tried again after rotationRetry")
	}
}

// writePEM writes a PEM block of type typ holding der to a file.
func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestSignKeyFiles signs with keys from PEM files: Ed25519 (EdDSA) and
// P-256 (ES256), with a second file that is only published.
func TestSignKeyFiles(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	oldPub, _, _ := ed25519.GenerateKey(rand.Reader)
	oldDER, _ := x509.MarshalPKIXPublicKey(oldPub)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	rows := []struct {
		name  string
		files []string
		alg   string
	}{
		{"ed25519 and a published public key", []string{writePEM(t, "PRIVATE KEY", pkcs8(t, edKey)), writePEM(t, "PUBLIC KEY", oldDER)}, "EdDSA"},
		{"p-256 in pkcs8", []string{writePEM(t, "PRIVATE KEY", pkcs8(t, ecKey))}, "ES256"},
		{"p-256 in sec1", []string{writePEM(t, "EC PRIVATE KEY", sec1)}, "ES256"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			h, id := benchHandlerWith(t, &Handler{Sign: &SignConfig{KeyFiles: row.files}})
			now := time.Now()
			token := signedRequest(t, h, id, http.MethodGet, "http://app.example.com/", now)
			_, header, err := verifyToken(t, h, token, now)
			if err != nil {
				t.Fatalf("the token does not verify: %v", err)
			}
			if header.Algorithm != row.alg {
				t.Fatalf("alg = %s, want %s", header.Algorithm, row.alg)
			}
			if n := len(h.signer.ring.published(now)); n != len(row.files) {
				t.Fatalf("%d keys published, want %d", n, len(row.files))
			}
		})
	}
}

// TestSignConfigRefused provisions handlers with bad sign settings: each
// is refused with a message that says what to change.
func TestSignConfigRefused(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edFile := writePEM(t, "PRIVATE KEY", pkcs8(t, edKey))
	pubDER, _ := x509.MarshalPKIXPublicKey(edKey.Public())
	t.Setenv("SHORT_SECRET", "too-short")
	rows := []struct {
		name string
		sign SignConfig
		want string
	}{
		{"lifetime too long", SignConfig{Secret: benchSecret, Lifetime: caddy.Duration(2 * time.Hour)}, "lifetime 2h0m0s is longer than 1h0m0s"},
		{"rotate not longer than lifetime", SignConfig{Secret: benchSecret, Lifetime: caddy.Duration(time.Hour), Rotate: caddy.Duration(time.Hour)}, "rotate (1h0m0s) must be longer than lifetime"},
		{"secret and files", SignConfig{Secret: benchSecret, KeyFiles: []string{edFile}}, "either secret or key_files"},
		{"rotate with files", SignConfig{KeyFiles: []string{edFile}, Rotate: caddy.Duration(time.Hour)}, "rotate does not apply to key_files"},
		{"short secret", SignConfig{Secret: "{env.SHORT_SECRET}"}, "secret is 9 characters long"},
		{"missing secret", SignConfig{Secret: "{env.NO_SUCH_SECRET_VARIABLE}"}, "secret is 0 characters long"},
		{"too many keys", SignConfig{Secret: benchSecret, Keys: strings.Fields("a b c d e f g h i j k l m n o p q")}, "a token holds at most 16"},
		{"reserved key", SignConfig{Secret: benchSecret, Keys: []string{"meta-token"}}, "sign: keys:"},
		{"missing file", SignConfig{KeyFiles: []string{"/nonexistent/key.pem"}}, "reading key file"},
		{"not PEM", SignConfig{KeyFiles: []string{writePEM(t, "X", nil)[:0] + "/dev/null"}}, "holds no PEM block"},
		{"rsa", SignConfig{KeyFiles: []string{writePEM(t, "PRIVATE KEY", pkcs8(t, rsaKey))}}, "use an Ed25519 key"},
		{"p-384", SignConfig{KeyFiles: []string{writePEM(t, "PRIVATE KEY", pkcs8(t, p384))}}, "only on curve P-256"},
		{"a public key first", SignConfig{KeyFiles: []string{writePEM(t, "PUBLIC KEY", pubDER)}}, "must hold the private key"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			cfg, _ := json.Marshal(map[string]any{"backend": "bolt", "path": filepath.Join(t.TempDir(), "sessions.db")})
			h := &Handler{Sign: &row.sign, StoreRaw: cfg}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := h.Provision(ctx)
			_ = h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), row.want) {
				t.Fatalf("Provision = %v, want an error containing %q", err, row.want)
			}
		})
	}
}

// TestSignedTokenTooLarge checks that a session whose claimed values
// would make a token over maxTokenSize goes on without one, logged once
// per cache window.
func TestSignedTokenTooLarge(t *testing.T) {
	values := maps.Clone(benchValues)
	values["roles"] = strings.Repeat("r", 3500)
	h, _ := benchHandlerWith(t, &Handler{Sign: &SignConfig{Secret: benchSecret, Keys: []string{"user", "roles"}}})
	id, _ := createSession(t, h, values)
	core, logs := observer.New(zap.WarnLevel)
	h.signer.logger = zap.New(core)
	now := time.Now()
	for range 2 {
		if token := signedRequest(t, h, id, http.MethodGet, "http://app.example.com/", now); token != "" {
			t.Fatalf("a token of %d bytes was forwarded", len(token))
		}
	}
	if logs.FilterMessageSnippet("longer than the limit").Len() != 1 {
		t.Fatalf("want one warning, got %v", logs.All())
	}
	// Without roles the token fits.
	patchSession(&session.Patch{Delete: []string{"roles"}})(t, h, id)
	if token := signedRequest(t, h, id, http.MethodGet, "http://app.example.com/", now); token == "" {
		t.Fatal("no token once the session is small again")
	}
}

// TestSignedTokenOnlyWithASession runs requests through ServeHTTP: a
// client's own X-Session-Meta-Token never reaches the app, anonymous or
// not, and a session's request carries the handler's token.
func TestSignedTokenOnlyWithASession(t *testing.T) {
	h, id := benchHandlerWith(t, &Handler{Sign: &SignConfig{Secret: benchSecret}})
	u, _ := url.Parse("http://app.example.com/page")
	for _, withSession := range []bool{false, true} {
		hdr := browserHeader("")
		if withSession {
			hdr = browserHeader(id)
		}
		hdr["X-Session-Meta-Token"] = []string{"forged"}
		hdr["X_session_meta_token"] = []string{"forged"}
		r := newBenchRequest(u, hdr)
		var seen http.Header
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			seen = r.Header.Clone()
			return nil
		})
		if err := h.ServeHTTP(&discard{h: http.Header{}}, r, next); err != nil {
			t.Fatal(err)
		}
		tokens := seen.Values("X-Session-Meta-Token")
		switch {
		case len(seen["X_session_meta_token"]) > 0:
			t.Fatal("a forged token in another spelling reached the app")
		case !withSession && len(tokens) > 0:
			t.Fatalf("an anonymous request reached the app with a token: %q", tokens)
		case withSession && (len(tokens) != 1 || tokens[0] == "forged"):
			t.Fatalf("a session's request reached the app with tokens %q, want the handler's one", tokens)
		}
	}
}

// TestWarnUnsharedKeys checks the warning for generated keys on Redis.
func TestWarnUnsharedKeys(t *testing.T) {
	rows := []struct {
		backend string
		storage certmagic.Storage
		warned  bool
	}{
		{"redis", &certmagic.FileStorage{Path: t.TempDir()}, true},
		{"redis", failingStorage{}, false}, // another storage module: shared
		{"bolt", &certmagic.FileStorage{Path: t.TempDir()}, false},
	}
	for _, row := range rows {
		core, logs := observer.New(zap.WarnLevel)
		h := &Handler{backend: row.backend, logger: zap.New(core)}
		h.warnUnsharedKeys(row.storage)
		if got := logs.Len() == 1; got != row.warned {
			t.Errorf("%s on %T: warned %v, want %v", row.backend, row.storage, got, row.warned)
		}
	}
}

// TestUnmarshalSign reads sign blocks and session_jwks from a Caddyfile.
func TestUnmarshalSign(t *testing.T) {
	rows := []struct{ name, input, want string }{
		{"bare", "session {\n sign \n}", `{"sign":{}}`},
		{"everything", "session {\n sign {\n keys user roles \n lifetime 30s \n rotate 24h \n secret {env.SIGN_SECRET} \n}\n}",
			`{"sign":{"keys":["user","roles"],"lifetime":30000000000,"rotate":86400000000000,"secret":"{env.SIGN_SECRET}"}}`},
		{"key files", "session {\n sign {\n key_file /etc/new.pem /etc/old.pem \n}\n}", `{"sign":{"key_files":["/etc/new.pem","/etc/old.pem"]}}`},
		{"jwks", "session_jwks", `{}`},
		{"jwks of a realm", "session_jwks {\n realm app \n}", `{"realm":"app"}`},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var v caddyfile.Unmarshaler = new(Handler)
			if strings.HasPrefix(row.input, "session_jwks") {
				v = new(JWKS)
			}
			if err := v.UnmarshalCaddyfile(caddyfile.NewTestDispenser(row.input)); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(v)
			if !jsonEqual(t, string(got), row.want) {
				t.Fatalf("got  %s\nwant %s", got, row.want)
			}
		})
	}
	refused := map[string]string{
		"argument on sign":      "session {\n sign yes \n}",
		"unknown sign setting":  "session {\n sign {\n algorithm RS256 \n}\n}",
		"repeated sign setting": "session {\n sign {\n lifetime 1m \n lifetime 2m \n}\n}",
		"bad lifetime":          "session {\n sign {\n lifetime soon \n}\n}",
		"bad key":               "session {\n sign {\n keys a.b \n}\n}",
		"no key files":          "session {\n sign {\n key_file \n}\n}",
		"two secrets":           "session {\n sign {\n secret a b \n}\n}",
		"argument on jwks":      "session_jwks /x /y",
		"unknown jwks setting":  "session_jwks {\n cache 1m \n}",
	}
	for name, input := range refused {
		t.Run(name, func(t *testing.T) {
			var v caddyfile.Unmarshaler = new(Handler)
			if strings.HasPrefix(input, "session_jwks") {
				v = new(JWKS)
			}
			if err := v.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
				t.Fatalf("no error for %q", input)
			}
		})
	}
}

// TestSignedReadPathAllocations holds the read path with sign at the
// allocations of the read path without it, while the token is cached:
// the cached token's header value is shared, not copied.
func TestSignedReadPathAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are measured in the full run")
	}
	u, _ := url.Parse("http://app.example.com/page")
	w := &discard{h: http.Header{}}
	measure := func(h *Handler, id string) float64 {
		tmpl := browserHeader(id)
		return testing.AllocsPerRun(200, func() {
			clear(w.h)
			r := newBenchRequest(u, tmpl)
			if err := h.ServeHTTP(w, r, app); err != nil {
				t.Fatal(err)
			}
		})
	}
	plain := measure(benchHandler(t))
	signed, id := benchHandlerWith(t, &Handler{Sign: &SignConfig{Secret: benchSecret}})
	if got := measure(signed, id); got > plain {
		t.Fatalf("a read with a cached token allocates %.0f times, without sign %.0f", got, plain)
	}
}

// TestJWKSHandler serves the key set of session_jwks: the signing
// handler's keys for GET, the header alone for HEAD, 405 for another
// method, 404 for a realm with no signing handler.
func TestJWKSHandler(t *testing.T) {
	h, _ := benchHandlerWith(t, &Handler{Sign: &SignConfig{Secret: benchSecret}})
	plain, _ := benchHandler(t) // does not sign: adds no key
	config := &App{handlers: []*Handler{h, plain}, logger: zap.NewNop()}
	if err := config.wired(); err != nil {
		t.Fatal(err)
	}
	kid := h.signer.ring.at(time.Now()).active.kid
	rows := []struct {
		method, realm string
		status        int
		body          string // a part of the body
	}{
		{http.MethodGet, "", http.StatusOK, `"kid":"` + kid + `"`},
		{http.MethodGet, h.realm, http.StatusOK, `"kid":"` + kid + `"`},
		{http.MethodHead, "", http.StatusOK, ""},
		{http.MethodPost, "", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "another realm", http.StatusNotFound, ""},
	}
	for _, row := range rows {
		t.Run(row.method+" "+row.realm, func(t *testing.T) {
			j := &JWKS{Realm: row.realm, app: config}
			r, _ := http.NewRequest(row.method, "http://app.example.com/jwks", nil)
			w := httptest.NewRecorder()
			err := j.ServeHTTP(w, r, nil)
			status := w.Code
			var he caddyhttp.HandlerError
			if errors.As(err, &he) {
				status = he.StatusCode
			}
			if status != row.status {
				t.Fatalf("status %d (%v), want %d", status, err, row.status)
			}
			if row.status != http.StatusOK {
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/jwk-set+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			body := w.Body.String()
			if row.body == "" && body != "" || !strings.Contains(body, row.body) || strings.Count(body, `"kid"`) != min(1, len(row.body)) {
				t.Fatalf("body %s, want one key, %s", body, row.body)
			}
			if strings.Contains(body, `"d"`) {
				t.Fatal("the key set holds a private key")
			}
		})
	}
}

// TestSignedTokenConcurrent signs from many goroutines at once, across a
// rotation of the key, on a few URLs: every token verifies and is for
// its own request. Under -race it shows the cache and the keyring safe.
func TestSignedTokenConcurrent(t *testing.T) {
	// The requests run up to an hour after the session is created: see
	// TestSignedTokenCache.
	h, id := benchHandlerWith(t, &Handler{
		Sign:        &SignConfig{Secret: benchSecret, Rotate: caddy.Duration(time.Hour)},
		IdleTimeout: caddy.Duration(3 * time.Hour), AbsoluteTimeout: caddy.Duration(6 * time.Hour),
	})
	start := time.Now().Truncate(time.Hour).Add(time.Hour - 5*time.Second)
	type given struct {
		path, token string
		at          time.Time
	}
	var wg sync.WaitGroup
	tokens := make([][]given, 8)
	for g := range tokens {
		wg.Go(func() {
			for i := range 40 {
				now := start.Add(time.Duration(i) * 250 * time.Millisecond) // across the rotation at 5s
				path := fmt.Sprintf("/p%d", i%3)
				tok := signedRequest(t, h, id, http.MethodGet, "http://app.example.com"+path, now)
				tokens[g] = append(tokens[g], given{path, tok, now})
			}
		})
	}
	wg.Wait()
	kids := map[string]bool{}
	for _, list := range tokens {
		for _, e := range list {
			// Checked when the app got it: the goroutines' requests
			// interleave, so a token may be signed anew at any of
			// their times, later ones included.
			claims, header, err := verifyToken(t, h, e.token, e.at)
			if err != nil || claims.Path != e.path {
				t.Fatalf("token for %s at %s: %+v, %v", e.path, e.at.Sub(start), claims, err)
			}
			kids[header.KeyID] = true
		}
	}
	if len(kids) != 2 {
		t.Fatalf("tokens of %d keys, want those of the key before and after the rotation", len(kids))
	}
}

// TestSignedTokenEndsWithTheSession: a token's exp is never past the
// session's absolute end, so that a verifier does not take it for a
// session that has ended; a token kept in the cache is signed again when
// the session's end moves (remember turned on or off) rather than handed
// out with the old one.
func TestSignedTokenEndsWithTheSession(t *testing.T) {
	h, id := benchHandlerWith(t, &Handler{Sign: &SignConfig{Secret: benchSecret, Keys: []string{"user"}}})
	hash := session.HashID(id)
	stored, err := h.store.Load(t.Context(), hash, time.Now(), h.timeouts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	u, _ := url.Parse("http://app.example.com/page")
	tokenAt := func(at, end time.Time) (string, tokenClaims) {
		t.Helper()
		rec := stored.Clone()
		rec.AbsoluteDeadline = end
		s := &requestState{handler: h, request: newRequestAs(http.MethodGet, u, browserHeader(id)), now: at, hash: hash, record: rec}
		hdr := http.Header{}
		s.forwardToken(hdr)
		token := hdr.Get(h.protocol.HeaderName(metaToken))
		claims, _, err := verifyToken(t, h, token, at)
		if err != nil {
			t.Fatalf("the token at %s does not verify: %v", at.Sub(now), err)
		}
		return token, claims
	}
	far := now.Add(time.Hour)
	if _, c := tokenAt(now, far); c.EXP != now.Add(time.Minute).Unix() {
		t.Fatalf("exp of a session that ends in an hour = %d, want iat + lifetime %d", c.EXP, now.Add(time.Minute).Unix())
	}

	soon := now.Add(10*time.Second + 500*time.Millisecond)
	h.signer.cache = tokenCache{} // a new session's first token
	token, c := tokenAt(now, soon)
	if c.EXP != soon.Unix() {
		t.Fatalf("exp of a session that ends in 10.5s = %d, want its end rounded down %d", c.EXP, soon.Unix())
	}
	if _, _, err := verifyToken(t, h, token, soon.Add(time.Second)); err == nil {
		t.Fatal("the token verifies after the session's end")
	}
	// Within the cache's reuse: the same end gives the same token; a later
	// end (remember on) a new one that lasts its lifetime, and an earlier
	// end (remember off) a new one that ends with the session.
	at := now.Add(2 * time.Second)
	if again, _ := tokenAt(at, soon); again != token {
		t.Fatal("the cache did not hand out the token of the same session and end again")
	}
	if _, c := tokenAt(at, far); c.EXP != at.Add(time.Minute).Unix() {
		t.Fatalf("after the end moved later, exp = %d, want %d", c.EXP, at.Add(time.Minute).Unix())
	}
	sooner := at.Add(5 * time.Second)
	if _, c := tokenAt(at.Add(time.Second), sooner); c.EXP != sooner.Unix() {
		t.Fatalf("after the end moved sooner, exp = %d, want %d", c.EXP, sooner.Unix())
	}
	// An end that comes a little sooner than the cached token's exp, by
	// less than the cache's reuse, gets a new token too: the cached one
	// would verify after the session's end.
	h.signer.cache = tokenCache{}
	if _, c := tokenAt(at, far); c.EXP != at.Add(time.Minute).Unix() {
		t.Fatalf("exp = %d, want %d", c.EXP, at.Add(time.Minute).Unix())
	}
	justSooner := at.Add(time.Minute - 5*time.Second)
	if _, c := tokenAt(at.Add(time.Second), justSooner); c.EXP != justSooner.Unix() {
		t.Fatalf("after the end moved 5s before the cached token's exp, exp = %d, want %d", c.EXP, justSooner.Unix())
	}
}
