package integration_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestSignedTokenPathAsTheClientSentIt: the token's method and path are
// the request's as the client sent them (README, "A signed token for the
// app"), which is what the app is shown as REQUEST_URI through
// php_fastcgi, even where the session handler runs after Caddy has
// changed them: inside handle_path, or after a rewrite or a method.
func TestSignedTokenPathAsTheClientSentIt(t *testing.T) {
	tests := []struct {
		name, before, sent string // before: the site's lines before session
		method             string
	}{
		{name: "handle_path", before: "handle_path /app/* {", sent: "/app/orders"},
		{name: "rewrite", before: "route {\n\trewrite /legacy/orders /orders", sent: "/legacy/orders"},
		{name: "method", before: "route {\n\tmethod GET", sent: "/orders", method: http.MethodPost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMultiSite(t, "s")
			m.load([2]string{"s", tc.before + `
				session {
					store bolt {db:a}
					sign {
						secret ` + signSecret + `
					}
				}
				reverse_proxy {up}
			}`})
			cookie := m.loginAt("s", tc.sent, "", "sid", "X-Session-Set-User: alice")
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			_, body := m.send("s", method, tc.sent+"?x=1", http.Header{"Cookie": {cookie}})
			var seen struct{ Headers http.Header }
			if err := json.Unmarshal([]byte(body), &seen); err != nil {
				t.Fatalf("the app's answer %q: %v", body, err)
			}
			token := tokenOf(t, seen.Headers)
			parts := strings.Split(token, ".")
			if len(parts) != 3 {
				t.Fatalf("the app got no token: %q", token)
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims tokenClaims
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			if claims.Path != tc.sent || claims.Method != method {
				t.Errorf("the token names %s %s; the client sent %s %s", claims.Method, claims.Path, method, tc.sent)
			}
		})
	}
}
