package integration_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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
			send := func(method, path, cookie string, commands ...string) *http.Response {
				t.Helper()
				req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", m.ports["s"], path), nil)
				if err != nil {
					t.Fatal(err)
				}
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				for _, c := range commands {
					req.Header.Add("Test-Header", c)
				}
				res, err := m.tester.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			login := send(http.MethodGet, tc.sent, "", "X-Session-Set-User: alice")
			login.Body.Close()
			var cookie string
			for _, c := range login.Cookies() {
				if c.Name == "sid" {
					cookie = "sid=" + c.Value
				}
			}
			if cookie == "" {
				t.Fatal("the login issued no cookie")
			}
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			res := send(method, tc.sent+"?x=1", cookie)
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var seen struct{ Headers http.Header }
			if err := json.Unmarshal(body, &seen); err != nil {
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
