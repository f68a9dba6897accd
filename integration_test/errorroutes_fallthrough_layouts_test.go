package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestFallThroughAcrossSeveralGuardedSites: several sites of a port with
// a session and no handle_errors each have only the guard as error
// routes; an error of one runs the routes after its own, among them the
// other guarded sites', until a site's handle_errors answers, as Caddy
// does for sites without error routes. Whatever answers gets none of the
// session (its user, its raw ID) and applies none of its app's commands
// or cookies.
func TestFallThroughAcrossSeveralGuardedSites(t *testing.T) {
	const errorPage = `handle_errors $CODES {
		rewrite * /other-error
		reverse_proxy $C
	}`
	rows := []struct {
		name, config string
	}{
		{"a wildcard site with a session and no error routes, then a catch-all's", `
http://a.localhost:$PORT {
	session {
		store bolt $DB
	}
	@down path /down
	reverse_proxy @down 127.0.0.1:1
	reverse_proxy $A
}
http://*.localhost:$PORT {
	session {
		store bolt $DB
		cookie wild
	}
	respond "wildcard"
}
http://:$PORT {
	respond "catch-all"
	$ERRORS
}`},
		{"another host's guarded site, then a catch-all with a session of its own", `
http://a.localhost:$PORT {
	session {
		store bolt $DB
	}
	@down path /down
	reverse_proxy @down 127.0.0.1:1
	reverse_proxy $A
}
http://b.localhost:$PORT {
	session {
		store bolt $DB
		cookie b
	}
	respond "b"
}
http://:$PORT {
	session {
		store bolt $DB
		cookie sid
	}
	respond "catch-all"
	$ERRORS
}`},
	}
	for _, row := range rows {
		for _, codes := range []string{"", "502"} {
			name := row.name
			if codes != "" {
				name += ", handle_errors " + codes
			}
			t.Run(name, func(t *testing.T) {
				appA, appC := startUpstream(t), startUpstream(t)
				port := freePort(t)
				cfg := strings.NewReplacer("$ERRORS", errorPage).Replace(row.config)
				cfg = strings.NewReplacer("$CODES", codes, "$PORT", fmt.Sprint(port),
					"$DB", filepath.Join(t.TempDir(), "sessions.db"), "$A", appA.addr(), "$C", appC.addr()).Replace(cfg)
				tester := caddyOnPort(t, port, cfg)
				do := func(path, cookie string, commands ...string) (*http.Response, []byte) {
					t.Helper()
					return getFrom(t, tester, port, "a.localhost", path, cookie, commands...)
				}
				res, _ := do("/login", "", "X-Session-Set-User: alice")
				var id string
				for _, c := range res.Cookies() {
					if c.Name == "sid" {
						id = c.Value
					}
				}
				if id == "" {
					t.Fatal("the login issued no sid cookie")
				}
				cookie := "sid=" + id
				res, body := do("/down", cookie, "X-Session-Set-Role: admin", "Set-Cookie: sid=planted; Path=/")
				var s seen
				if err := json.Unmarshal(body, &s); err != nil || s.URI != "/other-error" {
					t.Fatalf("a.localhost's 502 was not answered by the catch-all's error route: %d %q", res.StatusCode, body)
				}
				for name, values := range s.Headers {
					if strings.HasPrefix(strings.ToLower(name), "x-session-") {
						t.Errorf("the catch-all's error route got %s: %q", name, values)
					}
					for _, v := range values {
						if strings.Contains(v, id) {
							t.Errorf("the catch-all's error route got the raw session ID in %s", name)
						}
					}
				}
				for _, c := range res.Cookies() {
					if c.Value == "planted" {
						t.Errorf("the catch-all's app set the cookie %s through a.localhost's error", c.Name)
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
					t.Errorf("the catch-all's answer to the error applied a command: role %q", got)
				}
			})
		}
	}
}
