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
)

// TestErrorRoutesWhoseHostsAnotherSiteTakes: a session handler takes the
// session it forwarded off a request whose error another site's error
// routes may answer, and leaves it to its site's own. Caddy tries the
// sites of a port in order and runs the first that matches the request's
// host: a wildcard site (`*.localhost`) never serves a host that a site
// of its own before it takes whole (`a.localhost`), so that site's
// handle_errors, though its hosts overlap the wildcard, never gets the
// wildcard site's errors. They were taken as the wildcard site's way to
// another site's error routes: its own handle_errors, the user's own error
// page, got its errors without the user's session. A site that takes only
// some of the requests of its host (a path, another matcher), or that
// comes after, still leaves its error routes in reach, and so does a
// catch-all site's handle_errors.
func TestErrorRoutesWhoseHostsAnotherSiteTakes(t *testing.T) {
	rows := []struct {
		name, config, adapter string
		// host, login and fail: the requests (Host, paths); errURI: the
		// URI the error route's app sees; user: the X-Session-User it
		// gets ("" none)
		host, login, fail, errURI, user string
	}{
		// The wildcard site's own error routes keep its session.
		{name: "a wildcard site's own handle_errors, its session at the top, beside a host site's", config: `
http://*.localhost:$PORT {
	session {
		store bolt $DB
		$SIGN
	}
	error /app/boom 500
	reverse_proxy $A
	handle_errors {
		rewrite * /own-error
		reverse_proxy $A
	}
}
http://a.localhost:$PORT {
	respond "a"
	handle_errors {
		rewrite * /a-error
		reverse_proxy $C
	}
}`, host: "b.localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "a wildcard site's own handle_errors, its session in a handle, beside a host site's and a catch-all's", config: `
http://*.localhost:$PORT {
	handle /app/* {
		session {
			store bolt $DB
			$SIGN
		}
		error /app/boom 500
		reverse_proxy $A
	}
	handle_errors {
		rewrite * /own-error
		reverse_proxy $A
	}
}
http://a.localhost:$PORT {
	respond "a"
	handle_errors {
		rewrite * /a-error
		reverse_proxy $C
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "b.localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "a site of a wildcard and a host, its own handle_errors, beside a host site's", config: `
http://*.localhost:$PORT, http://b.example.localhost:$PORT {
	session {
		store bolt $DB
		$SIGN
	}
	error /app/boom 500
	reverse_proxy $A
	handle_errors {
		rewrite * /own-error
		reverse_proxy $A
	}
}
http://a.localhost:$PORT, http://c.localhost:$PORT {
	respond "a"
	handle_errors {
		rewrite * /a-error
		reverse_proxy $C
	}
}`, host: "b.localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "JSON: a wildcard route's own error route, beside a host route's", adapter: "json", config: `{
	"admin": {"listen": "localhost:$ADMIN"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:$PORT"], "automatic_https": {"disable": true},
		"routes": [
			{"match": [{"host": ["a.localhost"]}], "terminal": true, "handle": [{"handler": "static_response", "body": "a"}]},
			{"match": [{"host": ["*.localhost"]}], "terminal": true, "handle": [{"handler": "subroute", "routes": [
				{"handle": [{"handler": "session", "store": {"backend": "bolt", "path": "$DB"}}]},
				{"match": [{"path": ["/app/boom"]}], "handle": [{"handler": "error", "status_code": 500}]},
				{"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "$A"}]}]}
			]}]}
		],
		"errors": {"routes": [
			{"match": [{"host": ["a.localhost"]}], "terminal": true, "handle": [
				{"handler": "rewrite", "uri": "/a-error"},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "$C"}]}
			]},
			{"match": [{"host": ["*.localhost"]}], "terminal": true, "handle": [
				{"handler": "rewrite", "uri": "/own-error"},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "$A"}]}
			]}
		]}
	}}}}
}`, host: "b.localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		// Error routes of another site that the wildcard site's errors
		// still reach get no session.
		{name: "a wildcard site without error routes, beside a host site's and a catch-all's", config: `
http://*.localhost:$PORT {
	handle /app/* {
		session {
			store bolt $DB
			$SIGN
		}
		error /app/boom 500
		reverse_proxy $A
	}
}
http://a.localhost:$PORT {
	respond "a"
	handle_errors {
		rewrite * /a-error
		reverse_proxy $A
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "b.localhost", login: "/app/login", fail: "/app/boom", errURI: "/catch-all-error"},

		{name: "JSON: a host route that takes only a path of its host, its error route of the host alone", adapter: "json", config: `{
	"admin": {"listen": "localhost:$ADMIN"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:$PORT"], "automatic_https": {"disable": true},
		"routes": [
			{"match": [{"host": ["a.localhost"], "path": ["/other/*"]}], "terminal": true, "handle": [{"handler": "static_response", "body": "a"}]},
			{"match": [{"host": ["*.localhost"]}], "terminal": true, "handle": [{"handler": "subroute", "routes": [
				{"handle": [{"handler": "session", "store": {"backend": "bolt", "path": "$DB"}}]},
				{"match": [{"path": ["/app/boom"]}], "handle": [{"handler": "error", "status_code": 500}]},
				{"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "$A"}]}]}
			]}]}
		],
		"errors": {"routes": [
			{"match": [{"host": ["a.localhost"]}], "terminal": true, "handle": [
				{"handler": "rewrite", "uri": "/a-error"},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "$C"}]}
			]},
			{"match": [{"host": ["*.localhost"]}], "terminal": true, "handle": [
				{"handler": "rewrite", "uri": "/own-error"},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "$A"}]}
			]}
		]}
	}}}}
}`, host: "a.localhost", login: "/app/login", fail: "/app/boom", errURI: "/a-error"},

		{name: "JSON: a host route after the wildcard one, its error route first", adapter: "json", config: `{
	"admin": {"listen": "localhost:$ADMIN"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:$PORT"], "automatic_https": {"disable": true},
		"routes": [
			{"match": [{"host": ["*.localhost"]}], "terminal": true, "handle": [{"handler": "subroute", "routes": [
				{"handle": [{"handler": "session", "store": {"backend": "bolt", "path": "$DB"}}]},
				{"match": [{"path": ["/app/boom"]}], "handle": [{"handler": "error", "status_code": 500}]},
				{"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "$A"}]}]}
			]}]},
			{"match": [{"host": ["a.localhost"]}], "terminal": true, "handle": [{"handler": "static_response", "body": "a"}]}
		],
		"errors": {"routes": [
			{"match": [{"host": ["a.localhost"]}], "terminal": true, "handle": [
				{"handler": "rewrite", "uri": "/a-error"},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "$C"}]}
			]},
			{"match": [{"host": ["*.localhost"]}], "terminal": true, "handle": [
				{"handler": "rewrite", "uri": "/own-error"},
				{"handler": "reverse_proxy", "upstreams": [{"dial": "$A"}]}
			]}
		]}
	}}}}
}`, host: "a.localhost", login: "/app/login", fail: "/app/boom", errURI: "/a-error"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			config := strings.NewReplacer(
				"$PORT", fmt.Sprint(port),
				"$ADMIN", fmt.Sprint(adminPort),
				"$DB", filepath.Join(t.TempDir(), "sessions.db"),
				"$SIGN", "sign {\n\t\t\t\tsecret 0123456789abcdef0123456789abcdef\n\t\t\t}",
				"$A", appA.addr(), "$C", appC.addr(),
			).Replace(tc.config)
			tester := caddytest.NewTester(t)
			tester.Client.Jar = nil
			if tc.adapter == "json" {
				tester.InitServer(config, "json")
			} else {
				tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n%s\n",
					adminPort, port, freePort(t), config), "caddyfile")
			}
			do := func(path, cookie string, commands ...string) (*http.Response, seen) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = tc.host
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
				var s seen
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatalf("%s %s: no app answered: %d %q", tc.host, path, res.StatusCode, body)
				}
				return res, s
			}
			res, _ := do(tc.login, "", "X-Session-Set-User: alice", "X-Session-Set-Plan: gold")
			var id, cookie string
			for _, c := range res.Cookies() {
				if c.Name == "sid" {
					id, cookie = c.Value, "sid="+c.Value
				}
			}
			if cookie == "" {
				t.Fatal("the login issued no sid cookie")
			}

			_, s := do(tc.fail, cookie)
			if s.URI != tc.errURI {
				t.Fatalf("the error was answered by %q, want %q", s.URI, tc.errURI)
			}
			if got := s.Headers.Get("X-Session-User"); got != tc.user {
				t.Errorf("the error route's app got X-Session-User %q, want %q", got, tc.user)
			}
			if tc.user == "" {
				for name := range s.Headers {
					if strings.HasPrefix(strings.ToLower(name), "x-session-") {
						t.Errorf("another site's error route got %s: %q", name, s.Headers.Values(name))
					}
				}
			}
			if strings.Contains(strings.Join(s.Headers.Values("Cookie"), ";"), id) {
				t.Errorf("the error route's app got the raw session ID in Cookie")
			}

			// The session is untouched by the error: still alice's.
			_, s = do(tc.login, cookie)
			if got := s.Headers.Get("X-Session-User"); got != "alice" {
				t.Fatalf("after the error the site's app sees user %q, want alice", got)
			}
		})
	}
}
