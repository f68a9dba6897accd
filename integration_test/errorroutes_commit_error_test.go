package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestCommitErrorReachesForeignErrorRoutesWithoutTheSession: a response
// whose session commands the store fails to take (a write that fails) is
// dropped, and its error (a 503) goes to the error routes. On a site with no error routes of its own those are another
// site's (a catch-all's or a wildcard site's handle_errors), and README
// promises that the session handler takes the session off the request
// before they get it: its forwarded headers, its placeholders, and what
// a CEL session() matches. The site's own error routes still get it:
// nothing was written, and the session stands. The commit's error was
// the one way to the error routes that kept the session on the request;
// during an outage (on_store_error stale), a response with commands is
// refused that way too.
func TestCommitErrorReachesForeignErrorRoutesWithoutTheSession(t *testing.T) {
	const catchAll = `
http://a.localhost:$PORT {
	handle /app/* {
		session {
			store faulty $DB
			$POLICY
			csrf {
				token
			}
		}
		reverse_proxy $A
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		request_header -Test-Header # the orders are for the site's app, not the error page's
		rewrite * /other-error
		$MATCHED
		reverse_proxy $C {
			$SHOWN
		}
	}
}`
	const wildcard = `
http://a.localhost:$PORT {
	route {
		session {
			store faulty $DB
			$POLICY
			csrf {
				token
			}
		}
		reverse_proxy $A
	}
}
http://*.localhost:$PORT {
	session {
		store faulty $DB
		cookie other
	}
	respond "wildcard"
	handle_errors {
		request_header -Test-Header # the orders are for the site's app, not the error page's
		rewrite * /other-error
		$MATCHED
		reverse_proxy $C {
			$SHOWN
		}
	}
}`
	const own = `
http://a.localhost:$PORT {
	handle /app/* {
		session {
			store faulty $DB
			$POLICY
			csrf {
				token
			}
		}
		reverse_proxy $A
	}
	handle_errors {
		request_header -Test-Header # the orders are for the site's app, not the error page's
		rewrite * /own-error
		$MATCHED
		reverse_proxy $A {
			$SHOWN
		}
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		request_header -Test-Header # the orders are for the site's app, not the error page's
		rewrite * /other-error
		reverse_proxy $C
	}
}`
	rows := []struct {
		name, config   string
		commands       []string
		errURI         string
		ownErrorRoutes bool
		outage         bool // reads fail too: the session is served from the stale copy
	}{
		{"a catch-all's error route, a set", catchAll, []string{"X-Session-Set-Note: saved"}, "/other-error", false, false},
		{"a catch-all's error route, a logout", catchAll, []string{"X-Session-Destroy: true"}, "/other-error", false, false},
		{"a catch-all's error route, a renewal", catchAll, []string{"X-Session-Renew: true"}, "/other-error", false, false},
		{"a wildcard site's error route, a set", wildcard, []string{"X-Session-Set-Note: saved"}, "/other-error", false, false},
		{"a catch-all's error route, a set during an outage", catchAll, []string{"X-Session-Set-Note: saved"}, "/other-error", false, true},
		{"a wildcard site's error route, a logout during an outage", wildcard, []string{"X-Session-Destroy: true"}, "/other-error", false, true},
		{"the site's own error route, a set", own, []string{"X-Session-Set-Note: saved"}, "/own-error", true, false},
		{"the site's own error route, a set during an outage", own, []string{"X-Session-Set-Note: saved"}, "/own-error", true, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			cfg := strings.NewReplacer(
				"$PORT", fmt.Sprint(port),
				"$DB", filepath.Join(t.TempDir(), "sessions.db"),
				"$A", appA.addr(), "$C", appC.addr(),
				"$SHOWN", derivedShown,
				"$MATCHED", derivedMatched,
				"$POLICY", "on_store_error stale 5m",
			).Replace(row.config)
			tester := caddyOnPort(t, port, cfg)
			do := func(path, cookie string, commands ...string) (*http.Response, seen) {
				t.Helper()
				res, body := getFrom(t, tester, port, "a.localhost", path, cookie, commands...)
				var s seen
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatalf("GET %s: no app answered: %d %q", path, res.StatusCode, body)
				}
				return res, s
			}
			res, _ := do("/app/login", "", "X-Session-Set-User: alice")
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
			_, page := do("/app/page", cookie)
			token := page.Headers.Get("X-Session-Meta-Csrf-Token")
			if token == "" {
				t.Fatal("the site's app got no csrf token")
			}
			hash := session.HashID(id).Short()

			failWrites.Store(true)
			failReads.Store(row.outage)
			t.Cleanup(func() { failWrites.Store(false); failReads.Store(false) })
			_, s := do("/app/save", cookie, row.commands...)
			failWrites.Store(false)
			failReads.Store(false)
			if s.URI != row.errURI {
				t.Fatalf("the failed commit was answered by %q, want the error route %q", s.URI, row.errURI)
			}
			expectErrorRouteSaw(t, s, row.ownErrorRoutes, hash, token)

			// Nothing was written: the session stands as it was.
			_, page = do("/app/page", cookie)
			if got := page.Headers.Get("X-Session-User"); got != "alice" {
				t.Fatalf("after the failed commit the site's app sees user %q, want alice", got)
			}
			if got := page.Headers.Get("X-Session-Note"); got != "" {
				t.Errorf("the failed write was stored: %q", got)
			}
		})
	}
}
