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

// TestErrorRoutesOfAnotherSiteGetNoSession: Caddy gives an error of a
// site that has no error routes of its own to the error routes of another
// site of the port that matches its host: a catch-all site (`http://:port`)
// or a wildcard one. A site whose session sits in a handle or route block
// adds no guard, so it has none; its errors reached the other site's
// handle_errors with the session forwarded in the request, and the other
// site's app got this site's user, its values and a signed token that this
// site's app accepts (aud its host). The session is taken off the request
// for another site's error routes, and only for those: a site's own error
// routes still get it (the user's own error page), as the README says.
func TestErrorRoutesOfAnotherSiteGetNoSession(t *testing.T) {
	rows := []errorRouteCase{
		{name: "a catch-all site's handle_errors, a session in a handle", config: `
http://a.localhost:$PORT {
	handle /app/* {
		session {
			store bolt $DB
			$SIGN
		}
		error /app/boom 500
		reverse_proxy $A
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "a.localhost", login: "/app/login", fail: "/app/boom", errURI: "/catch-all-error"},

		{name: "a wildcard site's handle_errors, a session in a route, the app down", config: `
http://a.localhost:$PORT {
	route {
		session {
			store bolt $DB
			$SIGN
		}
		reverse_proxy /app/login $A
		reverse_proxy $DEAD
	}
}
http://*.localhost:$PORT {
	respond "wildcard"
	handle_errors {
		rewrite * /wildcard-error
		reverse_proxy $C
	}
}`, host: "a.localhost", login: "/app/login", fail: "/app/down", errURI: "/wildcard-error"},

		{name: "a catch-all site's handle_errors, forward_cookie", config: `
http://a.localhost:$PORT {
	handle /app/* {
		session {
			store bolt $DB
			forward_cookie
			$SIGN
		}
		error /app/boom 500
		reverse_proxy $A
	}
}
http://:$PORT {
	session {
		store bolt $DB
		cookie other
	}
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "a.localhost", login: "/app/login", fail: "/app/boom", errURI: "/catch-all-error"},

		// What stays: the site's own error routes get its session.
		{name: "the site's own handle_errors, beside a catch-all's", config: `
http://a.localhost:$PORT {
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
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "a.localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "the site's own handle_errors, its session in a handle", config: `
http://a.localhost:$PORT {
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
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "a.localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "the catch-all site's own session and handle_errors, beside a host site's", config: `
http://a.localhost:$PORT {
	session {
		store bolt $DB
	}
	reverse_proxy $A
	handle_errors {
		rewrite * /a-error
		reverse_proxy $A
	}
}
http://:$PORT {
	handle /app/* {
		session {
			store bolt $DB
			$SIGN
		}
		error /app/boom 500
		reverse_proxy $C
	}
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "b.localhost", login: "/app/login", fail: "/app/boom", errURI: "/catch-all-error", user: "alice"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}

// errorRouteCase is a config of sites on one port, and what the error
// route that answers an error of the session's site must get.
type errorRouteCase struct {
	// config is Caddyfile (or, with adapter "json", JSON) text, with
	// $PORT, $ADMIN, $DB, $SIGN (a sign block) and the apps $A and $C.
	name, config, adapter string
	// host, login and fail: the requests (Host, paths); errURI: the
	// URI the error route's app sees; user: the X-Session-User it
	// gets ("" none)
	host, login, fail, errURI, user string
}

// run logs alice in, has the site fail, and checks what the error
// route's app got: the session (user) or nothing of it, never the raw ID;
// the session is alice's still after the error.
func (tc errorRouteCase) run(t *testing.T) {
	t.Helper()
	appA, appC := startUpstream(t), startUpstream(t)
	port := freePort(t)
	config := strings.NewReplacer(
		"$PORT", fmt.Sprint(port),
		"$ADMIN", fmt.Sprint(adminPort),
		"$DB", filepath.Join(t.TempDir(), "sessions.db"),
		"$SIGN", "sign {\n\t\t\t\tsecret 0123456789abcdef0123456789abcdef\n\t\t\t}",
		"$A", appA.addr(), "$C", appC.addr(),
		"$DEAD", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
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
}
