package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// A site's signed token opens no other site's app: each realm signs with
// keys of its own, and a site's session_jwks publishes its own realm's.
// The app of site a, checking a token against a's key set, refuses one
// that site b signed for a session of b, also when the client sent b the
// Host of a (Caddy's host matcher ignores the port, so b signs it with
// a's aud) and when an attacker who reaches a's app around Caddy sends it
// the Host of b's aud. Sites of one realm share sessions, and their
// tokens with them.
func TestSignedTokenOpensNoOtherSite(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-one-secret"
	cases := []struct {
		name, sign, realm string
		accepted          bool
	}{
		{name: "generated keys", sign: "sign"},
		{name: "one secret", sign: "sign {\n\t\t\tsecret " + secret + "\n\t\t}"},
		{name: "one realm", sign: "sign", realm: "realm shared", accepted: true},
		{name: "one realm, one secret", sign: "sign {\n\t\t\tsecret " + secret + "\n\t\t}", realm: "realm shared", accepted: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMultiSite(t, "a", "b")
			body := "session_jwks /jwks\n\tsession {\n\t\tstore bolt {db:shared}\n\t\t" + c.realm + "\n\t\t" + c.sign + "\n\t}\n\treverse_proxy {up}"
			m.load([2]string{"a", body}, [2]string{"b", body})
			cookie := m.login("b", "sid", "X-Session-Set-User: root")
			hostA := fmt.Sprintf("127.0.0.1:%d", m.ports["a"])
			hostB := fmt.Sprintf("127.0.0.1:%d", m.ports["b"])
			keysA, keysB := keySetAt(t, hostA), keySetAt(t, hostB)
			for _, host := range []string{hostA, hostB} {
				token := tokenFrom(t, m, "b", host, cookie)
				if _, _, err := verify(token, keysB, host); err != nil {
					t.Fatalf("site b's own key set refuses its token for Host %s: %v", host, err)
				}
				claims, _, err := verify(token, keysA, host)
				if accepted := err == nil; accepted != c.accepted {
					t.Errorf("site a's app accepts site b's token for Host %s: %v (err %v, claims %+v), want %v", host, accepted, err, claims, c.accepted)
				}
			}
		})
	}
}

// tokenFrom sends a GET to site with the Host header host and cookie, and
// returns the token the app behind it got.
func tokenFrom(t *testing.T, m *multiSite, site, host, cookie string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", m.ports[site]), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Cookie", cookie)
	res, err := m.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("site %s with Host %s: %d %s", site, host, res.StatusCode, body)
	}
	token := tokenOf(t, s.Headers)
	if token == "" {
		t.Fatalf("site %s with Host %s: the app got no token: %s", site, host, body)
	}
	return token
}

// keySetAt fetches the key set a site's session_jwks serves at /jwks.
func keySetAt(t *testing.T, host string) jose.JSONWebKeySet {
	t.Helper()
	res, err := http.Get("http://" + host + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("GET %s/jwks: %d %v: %s", host, res.StatusCode, err, body)
	}
	return set
}
