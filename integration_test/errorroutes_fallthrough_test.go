package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/session"
)

// A site without handle_errors has its errors answered by a catch-all's
// or a wildcard site's handle_errors of the port, as Caddy does without
// the session directive; the guard the directive adds to the site's error
// routes must not answer them itself with an empty body. Those routes are
// the other site's: they get none of this site's session (its keys, its
// placeholders, its cookie), and the guard still keeps the namespace off
// their answer and applies none of its commands.
func TestErrorsFallThroughToAnotherSitesErrorRoutes(t *testing.T) {
	const config = `
http://a.localhost:$PORT {
	session {
		store bolt $DB
	}
	@down path /down
	reverse_proxy @down 127.0.0.1:1
	reverse_proxy $A
}
$OTHER {
	respond "other site"
	handle_errors {
		reverse_proxy $C {
			header_up Test-Placeholder "user=[{http.session.user}] hash=[{http.session_hash}]"
		}
	}
}`
	rows := []struct{ name, other string }{
		{"a catch-all site", "http://:$PORT"},
		{"a wildcard site", "http://*.localhost:$PORT"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			cfg := strings.NewReplacer("$OTHER", row.other).Replace(config)
			cfg = strings.NewReplacer("$PORT", fmt.Sprint(port), "$DB", filepath.Join(t.TempDir(), "sessions.db"),
				"$A", appA.addr(), "$C", appC.addr()).Replace(cfg)
			tester := caddytest.NewTester(t)
			tester.Client.Jar = nil
			tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n%s\n",
				adminPort, port, freePort(t), cfg), "caddyfile")
			do := func(path, cookie string, commands ...string) (*http.Response, []byte) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = "a.localhost"
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				for _, c := range commands {
					req.Header.Add("Test-Header", c)
				}
				res, err := tester.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				assertNoNamespace(t, res.Header)
				return res, body
			}
			res, _ := do("/login", "", "X-Session-Set-User: alice")
			var cookie, id string
			for _, c := range res.Cookies() {
				if c.Name == "sid" {
					cookie, id = c.Name+"="+c.Value, c.Value
				}
			}
			if id == "" {
				t.Fatal("the login issued no cookie")
			}

			res, body := do("/down", cookie, "X-Session-Set-Role: admin")
			var s seen
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatalf("the other site's error route did not answer the site's 502: %d %q", res.StatusCode, body)
			}
			if got := s.Headers.Get("Test-Placeholder"); strings.Contains(got, "alice") || strings.Contains(got, session.HashID(id).Short()) {
				t.Errorf("the other site's error route read this site's session: %q", got)
			}
			for name, values := range s.Headers {
				if strings.HasPrefix(strings.ToLower(name), "x-session-") {
					t.Errorf("the other site's app got %s: %q", name, values)
				}
				for _, v := range values {
					if strings.Contains(v, id) {
						t.Errorf("the other site's app got the raw session ID in %s", name)
					}
				}
			}
			_, body = do("/page", cookie)
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatal(err)
			}
			if got := s.Headers.Get("X-Session-User"); got != "alice" {
				t.Errorf("after the error the session's user is %q, want alice", got)
			}
			if got := s.Headers.Get("X-Session-Role"); got != "" {
				t.Errorf("the other site's answer to the error applied a command: role %q", got)
			}
		})
	}
}
