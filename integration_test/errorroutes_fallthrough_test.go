package integration_test

import (
	"encoding/json"
	"strings"
	"testing"

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
http://a.localhost:{port:p} {
	session {
		store bolt {db:a}
	}
	@down path /down
	reverse_proxy @down 127.0.0.1:1
	reverse_proxy {up}
}
$OTHER {
	respond "other site"
	handle_errors {
		reverse_proxy {up} {
			header_up Test-Placeholder "user=[{http.session.user}] hash=[{http.session_hash}]"
		}
	}
}`
	for _, row := range []struct{ name, other string }{
		{"a catch-all site", "http://:{port:p}"},
		{"a wildcard site", "http://*.localhost:{port:p}"},
	} {
		t.Run(row.name, func(t *testing.T) {
			c := newHostedCaddy(t, "p")
			c.load(strings.ReplaceAll(config, "$OTHER", row.other))
			cookie := c.login("a.localhost", "p", "/login", "sid", "X-Session-Set-User: alice")
			id := strings.TrimPrefix(cookie, "sid=")

			res, body := c.get("a.localhost", "p", "/down", cookie, "X-Session-Set-Role: admin")
			var s seen
			if err := json.Unmarshal([]byte(body), &s); err != nil {
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
			_, body = c.get("a.localhost", "p", "/page", cookie)
			if err := json.Unmarshal([]byte(body), &s); err != nil {
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
