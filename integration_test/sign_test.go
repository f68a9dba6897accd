package integration_test

// The signed session token (sign) through a real Caddy: what the app gets,
// what a client cannot forge, key rotation by the session clock, the JWKS
// of session_jwks and of the admin API, and an independent verification
// with Python's PyJWT.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// signSecret derives the signing keys of these tests.
const signSecret = "integration-test-secret-0123456789abcdef"

// jwksDefs serves the site's keys at /jwks.
const jwksDefs = "session_jwks /jwks"

// tokenClaims are the claims of X-Session-Meta-Token.
type tokenClaims struct {
	SID     string            `json:"sid"`
	Sub     string            `json:"sub"`
	Aud     string            `json:"aud"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Session map[string]string `json:"session"`
	IAT     int64             `json:"iat"`
	EXP     int64             `json:"exp"`
}

// jwks fetches the site's key set from its session_jwks.
func (s *site) jwks() jose.JSONWebKeySet {
	s.t.Helper()
	res, err := http.Get(s.url("/jwks"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/jwk-set+json" {
		s.t.Fatalf("GET /jwks: %s, %s: %s", res.Status, res.Header.Get("Content-Type"), body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		s.t.Fatalf("GET /jwks: %v: %s", err, body)
	}
	return set
}

// kids lists the key IDs of a set.
func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

// verify checks a token as an app would, with go-jose, against set at
// the session clock's now, and returns its claims and kid.
func verify(token string, set jose.JSONWebKeySet, aud string) (tokenClaims, string, error) {
	var claims tokenClaims
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return claims, "", err
	}
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		return claims, kid, fmt.Errorf("no key has kid %q", kid)
	}
	var std jwt.Claims
	if err := tok.Claims(keys[0].Key, &std, &claims); err != nil {
		return claims, kid, err
	}
	return claims, kid, std.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{aud}, Time: clock.Now()}, 0)
}

// tokenOf returns the one X-Session-Meta-Token the app saw; "" if none.
func tokenOf(t *testing.T, h http.Header) string {
	t.Helper()
	var tokens []string
	for name, values := range h {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "X-Session-Meta-Token") {
			tokens = append(tokens, values...)
		}
	}
	if len(tokens) > 1 {
		t.Fatalf("the app saw %d tokens: %q", len(tokens), tokens)
	}
	if len(tokens) == 0 {
		return ""
	}
	return tokens[0]
}

// TestSignedToken follows a session through login, reads and logout with
// sign, on each store and with each kind of key: the app gets a token
// that verifies against the JWKS of session_jwks, for its own request
// only, and none without a session.
func TestSignedToken(t *testing.T) {
	for _, keys := range []struct{ name, options string }{
		{"secret", "sign {\n\t\t\tsecret " + signSecret + "\n\t\t\tkeys user roles\n\t\t}"},
		{"generated", "sign {\n\t\t\tkeys user roles\n\t\t}"},
	} {
		t.Run(keys.name, func(t *testing.T) {
			onEachStoreWith(t, jwksDefs, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s := newSite(t, keys.options)
				aud := fmt.Sprintf("127.0.0.1:%d", s.port)
				v := s.visitor()
				forged := "eyJhbGciOiJub25lIn0.eyJzZXNzaW9uIjp7InVzZXIiOiJtYWxsb3J5In19."
				r := v.do(http.MethodGet, "/", "X-Session-Meta-Token", forged)
				if tok := tokenOf(t, r.seen.Headers); tok != "" {
					t.Fatalf("an anonymous request reached the app with a token: %q", tok)
				}
				r = v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Roles: admin", "X-Session-Set-Cart: apple")
				if tok := tokenOf(t, r.seen.Headers); tok != "" {
					t.Fatal("the login request, anonymous when it reached the app, had a token")
				}
				set := s.jwks()
				r = v.do(http.MethodGet, "/page?x=1", "X-Session-Meta-Token", forged)
				token := tokenOf(t, r.seen.Headers)
				if token == "" || token == forged {
					t.Fatalf("the app got token %q, want one of the handler's", token)
				}
				claims, _, err := verify(token, set, aud)
				if err != nil {
					t.Fatalf("the token does not verify against /jwks: %v", err)
				}
				if claims.Sub != "alice" || claims.Aud != aud || claims.Method != "GET" || claims.Path != "/page" ||
					fmt.Sprint(claims.Session) != "map[roles:admin user:alice]" || claims.EXP-claims.IAT != 60 ||
					!regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(claims.SID) {
					t.Fatalf("claims = %+v", claims)
				}
				if strings.Contains(token, v.sid) {
					t.Fatal("the token holds the session ID")
				}
				// Another method and path get a token of their own.
				post := tokenOf(t, v.do(http.MethodPost, "/other").seen.Headers)
				if c, _, err := verify(post, set, aud); err != nil || c.Method != "POST" || c.Path != "/other" || c.SID != claims.SID {
					t.Fatalf("POST /other: %+v, %v", c, err)
				}
				// A renewal: a new ID, a new sid.
				v.get("/renew", "X-Session-Renew: true")
				if c, _, err := verify(tokenOf(t, v.get("/page").seen.Headers), set, aud); err != nil || c.SID == claims.SID || c.Sub != "alice" {
					t.Fatalf("after a renewal: %+v, %v", c, err)
				}
				// A change of a claimed value is in the next token.
				v.get("/promote", "X-Session-Set-Roles: owner")
				if c, _, err := verify(tokenOf(t, v.get("/page").seen.Headers), set, aud); err != nil || c.Session["roles"] != "owner" {
					t.Fatalf("after roles changed: %+v, %v", c, err)
				}
				// The admin API serves the same keys.
				res, err := http.Get(fmt.Sprintf("http://localhost:%d/session/jwks", adminPort))
				if err != nil {
					t.Fatal(err)
				}
				var admin jose.JSONWebKeySet
				err = json.NewDecoder(res.Body).Decode(&admin)
				res.Body.Close()
				if err != nil || !slices.Equal(kids(admin), kids(set)) {
					t.Fatalf("the admin API's JWKS has %v (%v), want %v", kids(admin), err, kids(set))
				}
				v.get("/logout", "X-Session-Destroy: true")
				if tok := tokenOf(t, v.get("/page").seen.Headers); tok != "" {
					t.Fatal("a request after the logout had a token")
				}
			})
		})
	}
}

// newHostileSiteOn is newHostileSite on a store ("" for bolt), with lines
// of the site before the session directive.
func newHostileSiteOn(t *testing.T, store, defs, options string) *site {
	t.Helper()
	srv := httptest.NewServer(new(hostileApp))
	t.Cleanup(srv.Close)
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      t.TempDir() + "/sessions.db",
		defs:    defs,
		options: options,
		up:      &upstream{srv},
		store:   store,
	}
	if s.store == "" {
		s.store = "store bolt " + s.db
	}
	s.tester.Client.Jar = nil
	s.load()
	return s
}

// TestHostileSignedToken sends forged tokens, one row per attack: the app
// sees the handler's own token for the visitor's session, or none for a
// request without a live session, and never the client's.
func TestHostileSignedToken(t *testing.T) {
	type row struct {
		name string
		// header lines after the request line; "\n" is sent as CRLF
		raw  string
		body string
		// session: the visitor's cookie; "other" another visitor's
		// token; "unknown" a cookie of no session
		cookie string
		// token: the app must see the handler's token for the visitor
		token bool
	}
	forged := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0."
	var rows []row
	for _, spelling := range []string{"X-Session-Meta-Token", "x-session-meta-token", "X_Session_Meta_Token", "X-SESSION-META_TOKEN"} {
		rows = append(rows,
			row{name: "forged " + spelling + " with a session", raw: spelling + ": " + forged + "\n", token: true},
			row{name: "forged " + spelling + " without a session", raw: spelling + ": " + forged + "\n", cookie: "none"},
		)
	}
	rows = append(rows,
		row{name: "forged twice", raw: "X-Session-Meta-Token: " + forged + "\nX-Session-Meta-Token: " + forged + "\n", token: true},
		row{name: "another session's real token, replayed", raw: "X-Session-Meta-Token: {other}\n", token: true},
		row{name: "another session's real token, without a session", raw: "X-Session-Meta-Token: {other}\n", cookie: "none"},
		row{name: "a cookie of no session", raw: "X-Session-Meta-Token: {other}\n", cookie: "unknown"},
		row{name: "Connection names the token, to have the proxy drop it", raw: "Connection: X-Session-Meta-Token\n", token: true},
		row{name: "forged in a request trailer", raw: "Transfer-Encoding: chunked\nTrailer: X-Session-Meta-Token\n",
			body: "5\r\nhello\r\n0\r\nX-Session-Meta-Token: " + forged + "\r\n\r\n", token: true},
	)
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			s := newHostileSiteOn(t, store, jwksDefs, "sign {\n\t\t\tsecret "+signSecret+"\n\t\t}")
			aud := "127.0.0.1"
			other := login(t, s, "bob")
			otherToken := tokenOf(t, appSawOf(t, other.get("/page")).Headers)
			if otherToken == "" {
				t.Fatal("no token for the other visitor")
			}
			set := s.jwks()
			for _, tc := range rows {
				t.Run(tc.name, func(t *testing.T) {
					v := login(t, s, "alice")
					cookie := "Cookie: sid=" + v.sid + "\r\n"
					switch tc.cookie {
					case "none":
						cookie = ""
					case "unknown":
						cookie = "Cookie: sid=" + strings.Repeat("A", 43) + "\r\n"
					}
					raw := "POST /page HTTP/1.1\r\n" + strings.ReplaceAll(strings.ReplaceAll(tc.raw, "{other}", otherToken), "\n", "\r\n") +
						"Host: " + aud + "\r\n" + cookie + "Connection: close\r\n\r\n" + tc.body
					res, body, err := rawExchange(t, s, raw)
					if err != nil {
						t.Fatal(err)
					}
					if res.StatusCode != http.StatusOK {
						t.Fatalf("status %d; body %s", res.StatusCode, body)
					}
					assertNoneLeaked(t, res)
					var saw appSaw
					if err := json.Unmarshal(body, &saw); err != nil {
						t.Fatalf("app answer %q: %v", body, err)
					}
					if names := namespaceIn(saw.Trailers); len(names) > 0 {
						t.Fatalf("the app saw namespace trailers %v", names)
					}
					token := tokenOf(t, saw.Headers)
					if !tc.token {
						if token != "" {
							t.Fatalf("a request without a session reached the app with token %q", token)
						}
						return
					}
					claims, _, err := verify(token, set, aud)
					if err != nil {
						t.Fatalf("the app's token %q does not verify: %v", token, err)
					}
					if claims.Sub != "alice" || claims.Method != "POST" || claims.Path != "/page" {
						t.Fatalf("the app's token is not the visitor's: %+v", claims)
					}
				})
			}
		})
	}
}

// appSawOf decodes what hostileApp reported.
func appSawOf(t *testing.T, r *response) appSaw {
	t.Helper()
	var saw appSaw
	if err := json.Unmarshal(r.body, &saw); err != nil {
		t.Fatalf("app answer %q: %v", r.body, err)
	}
	return saw
}

// TestSignedTokenRotation moves the session clock across a rotation of
// keys derived from a secret: the new key signs at once, the old one
// stays in the JWKS, and its last token verifies, until that token has
// expired; then it is gone.
func TestSignedTokenRotation(t *testing.T) {
	onEachStoreWith(t, jwksDefs, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "sign {\n\t\t\tsecret "+signSecret+"\n\t\t\trotate 1h\n\t\t\tlifetime 60s\n\t\t}")
		aud := fmt.Sprintf("127.0.0.1:%d", s.port)
		// To 30s before the next rotation.
		now := clock.Now()
		clock.Advance(now.Truncate(time.Hour).Add(time.Hour - 30*time.Second).Sub(now))
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		before := s.jwks()
		old := tokenOf(t, v.get("/page").seen.Headers)
		_, k1, err := verify(old, before, aud)
		if err != nil {
			t.Fatalf("the token does not verify: %v", err)
		}

		clock.Advance(40 * time.Second) // 10s into the new period
		set := s.jwks()
		fresh := tokenOf(t, v.get("/page").seen.Headers)
		_, k2, err := verify(fresh, set, aud)
		if err != nil || k2 == k1 {
			t.Fatalf("after the rotation the token has kid %s (was %s): %v", k2, k1, err)
		}
		if got, want := kids(set), kids(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{KeyID: k1}, {KeyID: k2}}}); !slices.Equal(got, want) {
			t.Fatalf("the JWKS after the rotation has %v, want the old and the new key %v", got, want)
		}
		if _, _, err := verify(old, set, aud); err != nil {
			t.Fatalf("the old key's last token no longer verifies before it expires: %v", err)
		}

		clock.Advance(60 * time.Second) // the old key's last token has expired
		set = s.jwks()
		if got := kids(set); !slices.Equal(got, []string{k2}) {
			t.Fatalf("the JWKS a lifetime after the rotation has %v, want only %s", got, k2)
		}
		if _, _, err := verify(old, set, aud); err == nil {
			t.Fatal("the old key's token still verifies")
		}
	})
}

// pythonWithPyJWT returns Debian's python3 if it has PyJWT and
// cryptography; it skips the test otherwise, or fails it under CI=true.
func pythonWithPyJWT(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	out, err := exec.Command(python, "-c", "import jwt, cryptography; print(jwt.__version__)").CombinedOutput()
	if err == nil {
		return python
	}
	msg := fmt.Sprintf("%s with PyJWT and cryptography is needed to verify tokens independently (apt-get install python3-jwt python3-cryptography): %v: %s", python, err, out)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// pyVerify verifies a token with PyJWT, its key fetched from the JWKS at
// jwksURL by PyJWKClient. leeway shifts PyJWT's clock (seconds, negative:
// later); checkIAT false skips the iat check. It returns the claims, or
// the name of PyJWT's exception.
const pyVerify = `
import json, sys, jwt
url, token, aud, leeway, check_iat = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "true"
try:
    key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=aud, leeway=leeway,
                        options={"require": ["exp", "iat", "aud", "sid"], "verify_iat": check_iat})
    print(json.dumps({"claims": claims}))
except jwt.PyJWTError as e:
    print(json.dumps({"error": type(e).__name__}))
`

// TestSignedTokenVerifiesWithPyJWT verifies a token forwarded through Caddy
// with an independent implementation, PyJWT, against the JWKS fetched
// from session_jwks: the token verifies; tampered, for another host, or
// expired, it does not.
func TestSignedTokenVerifiesWithPyJWT(t *testing.T) {
	python := pythonWithPyJWT(t)
	s := newSiteWith(t, "", jwksDefs, "sign {\n\t\t\tkeys user roles\n\t\t}")
	aud := fmt.Sprintf("127.0.0.1:%d", s.port)
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Roles: admin")
	token := tokenOf(t, v.get("/account").seen.Headers)
	// PyJWT reads the real clock; the session clock may be ahead of it.
	skew := clock.Now().Sub(time.Now()).Seconds()
	valid := strconv.FormatFloat(skew+5, 'f', 0, 64)
	expired := strconv.FormatFloat(-(skew + 61), 'f', 0, 64)
	rows := []struct {
		name, token, aud, leeway, checkIAT string
		wantErr                            string
	}{
		{"the token", token, aud, valid, "true", ""},
		{"tampered: another user", tamperPayload(t, token, `"alice"`, `"mallo"`), aud, valid, "true", "InvalidSignatureError"},
		{"tampered: another path", tamperPayload(t, token, `"/account"`, `"/accoun2"`), aud, valid, "true", "InvalidSignatureError"},
		{"for another host", token, "evil.example", valid, "true", "InvalidAudienceError"},
		{"expired: verified a second after its exp", token, aud, expired, "false", "ExpiredSignatureError"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			out, err := exec.Command(python, "-c", pyVerify, s.url("/jwks"), row.token, row.aud, row.leeway, row.checkIAT).CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v: %s", err, out)
			}
			var got struct {
				Claims tokenClaims `json:"claims"`
				Error  string      `json:"error"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("python said %s: %v", out, err)
			}
			if got.Error != row.wantErr {
				t.Fatalf("PyJWT: %q, want %q", got.Error, row.wantErr)
			}
			if row.wantErr == "" && (got.Claims.Sub != "alice" || got.Claims.Session["roles"] != "admin" || got.Claims.Path != "/account") {
				t.Fatalf("PyJWT read the claims %+v", got.Claims)
			}
		})
	}
}

// tamperPayload replaces from with to in the payload of token, keeping
// its header and signature.
func tamperPayload(t *testing.T, token, from, to string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), from) {
		t.Fatalf("the payload %s (%v) does not hold %s", payload, err, from)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), from, to, 1)))
	return strings.Join(parts, ".")
}
