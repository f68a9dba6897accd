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

// derivedShown is the header in which an error route shows the session's
// placeholders to its app: what a route of that site would read of "its"
// session (a vars matcher, request_header, header_up, a template).
const derivedShown = `header_up Test-Placeholder "user={http.session.user} hash={http.session_hash} csrf={http.session_meta.csrf_token}"`

// derivedMatched marks, in Test-Matched, a request whose session a CEL
// session() matcher finds alice's: a route that serves a user's pages
// (an admin's error page) by it.
const derivedMatched = `@alice expression session('user', 'alice')
		request_header @alice Test-Matched alice`

// TestForeignErrorRoutesGetNoDerivedSession: an error of a site that has
// no error routes of its own goes to another site's (a catch-all's or a
// wildcard site's handle_errors). The session handler takes what it
// forwarded off the request for them, so that the other site's app never
// gets this site's user; what is derived from the session must not reach
// them either: the placeholders ({http.session.*}, {http.session_hash},
// {http.session_meta.csrf_token}), which the other site's routes read as
// they read their own session's, and the CSRF token header of a forged
// POST the site refused, which was put on the request before the check
// refused it. Nor may a CEL session() matcher of those routes, which
// reads the session a handler loaded for the request, match it. The
// site's own error routes still get the session.
func TestForeignErrorRoutesGetNoDerivedSession(t *testing.T) {
	const catchAll = `
http://a.localhost:$PORT {
	handle /app/* {
		session {
			store bolt $DB
			csrf {
				token
			}
		}
		error /app/boom 500
		reverse_proxy $A
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
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
			store bolt $DB
			csrf {
				token
			}
		}
		reverse_proxy /app/login $A
		reverse_proxy /app/page $A
		reverse_proxy $DEAD
	}
}
http://*.localhost:$PORT {
	session {
		store bolt $DB
		cookie other
	}
	respond "wildcard"
	handle_errors {
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
			store bolt $DB
			csrf {
				token
			}
		}
		error /app/boom 500
		reverse_proxy $A
	}
	handle_errors {
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
		rewrite * /other-error
		reverse_proxy $C
	}
}`
	forged := []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}
	rows := []struct {
		name, config   string
		method, path   string
		headers        []string
		errURI         string
		ownErrorRoutes bool // the site's own: they get the session
	}{
		{"a catch-all's error route, an error of the app", catchAll, http.MethodGet, "/app/boom", nil, "/other-error", false},
		{"a catch-all's error route, a forged POST the csrf check refuses", catchAll, http.MethodPost, "/app/transfer", forged, "/other-error", false},
		{"a wildcard site's error route, the app down", wildcard, http.MethodGet, "/app/down", nil, "/other-error", false},
		{"a wildcard site's error route, a forged POST the csrf check refuses", wildcard, http.MethodPost, "/app/transfer", forged, "/other-error", false},
		{"the site's own error route, an error of the app", own, http.MethodGet, "/app/boom", nil, "/own-error", true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			cfg := strings.NewReplacer(
				"$PORT", fmt.Sprint(port),
				"$DB", filepath.Join(t.TempDir(), "sessions.db"),
				"$A", appA.addr(), "$C", appC.addr(),
				"$DEAD", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"$SHOWN", derivedShown,
				"$MATCHED", derivedMatched,
			).Replace(row.config)
			tester := caddytest.NewTester(t)
			tester.Client.Jar = nil
			tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n%s\n",
				adminPort, port, freePort(t), cfg), "caddyfile")
			do := func(method, path, cookie string, headers []string, commands ...string) (*http.Response, seen) {
				t.Helper()
				req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = "a.localhost"
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				for i := 0; i+1 < len(headers); i += 2 {
					req.Header.Add(headers[i], headers[i+1])
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
				var s seen
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatalf("%s %s: no app answered: %d %q", method, path, res.StatusCode, body)
				}
				return res, s
			}
			res, _ := do(http.MethodGet, "/app/login", "", nil, "X-Session-Set-User: alice")
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
			_, page := do(http.MethodGet, "/app/page", cookie, nil)
			token := page.Headers.Get("X-Session-Meta-Csrf-Token")
			if token == "" {
				t.Fatal("the site's app got no csrf token")
			}
			hash := session.HashID(id).Short()

			_, s := do(row.method, row.path, cookie, row.headers)
			if s.URI != row.errURI {
				t.Fatalf("the error was answered by %q, want %q", s.URI, row.errURI)
			}
			expectErrorRouteSaw(t, s, row.ownErrorRoutes, hash, token)

			// The session stands, and its token is as before.
			_, page = do(http.MethodGet, "/app/page", cookie, nil)
			if got := page.Headers.Get("X-Session-User"); got != "alice" {
				t.Fatalf("after the error the site's app sees user %q, want alice", got)
			}
		})
	}
}

// expectErrorRouteSaw checks what an error route saw of alice's session,
// under hash with the csrf token, from the request of seen: all of it on
// the site's own error routes (own), nothing of it on another site's (its
// placeholders empty or left as written, no session() match, no header in
// the namespace, not the token anywhere).
func expectErrorRouteSaw(t *testing.T, s seen, own bool, hash, token string) {
	t.Helper()
	shown := s.Headers.Get("Test-Placeholder")
	if own {
		if want := fmt.Sprintf("user=alice hash=%s csrf=%s", hash, token); shown != want {
			t.Errorf("the site's own error route read the placeholders %q, want %q: they show the user's session", shown, want)
		}
		if got := s.Headers.Get("X-Session-User"); got != "alice" {
			t.Errorf("the site's own error route got X-Session-User %q, want alice", got)
		}
		if got := s.Headers.Get("Test-Matched"); got != "alice" {
			t.Errorf("session('user', 'alice') in the site's own error route did not match alice's session: %q", got)
		}
		return
	}
	if strings.Contains(shown, "alice") || strings.Contains(shown, hash) || strings.Contains(shown, token) {
		t.Errorf("another site's error route read this site's session in the placeholders: %q", shown)
	}
	if got := s.Headers.Get("Test-Matched"); got != "" {
		t.Errorf("session('user', 'alice') in another site's error route matched this site's session")
	}
	for name, values := range s.Headers {
		if strings.HasPrefix(strings.ToLower(name), "x-session-") {
			t.Errorf("another site's error route got %s: %q", name, values)
		}
		for _, v := range values {
			if strings.Contains(v, token) {
				t.Errorf("another site's error route got this site's csrf token in %s", name)
			}
		}
	}
}
