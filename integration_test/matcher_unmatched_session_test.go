package integration_test

// The session matcher reads the session through its handler. A handler
// with a match of its own (`session /app/*`) gives no session to the
// requests it does not match: the app there is told nothing, and its
// commands apply nothing. A matcher that read the session on those
// requests anyway would authorize with a session the handler does not
// serve there: `respond @admins` on /other would let an admin's cookie
// through where the site says there is no session.

import (
	"net/http"
	"strings"
	"testing"
)

func TestSessionMatcherOnUnmatchedRequest(t *testing.T) {
	rows := []struct {
		name     string
		sessions string
		login    string // the path that logs in (matched by the handler)
		paths    []string
		matched  []string // paths where the handler matches: the matcher must see the session
	}{
		{
			name:     "placed matcher, path match",
			sessions: "session /app/* {\n\t\t$STORE\n\t}\n\t@admins session role admin\n\trespond @admins \"admin area\" 200",
			login:    "/app/login",
			paths:    []string{"/", "/other", "/application"},
			matched:  []string{"/app/x"},
		},
		{
			name:     "placed matcher, named matcher on the handler",
			sessions: "@app path /app/*\n\tsession @app {\n\t\t$STORE\n\t}\n\t@admins session role\n\trespond @admins \"admin area\" 200",
			login:    "/app/login",
			paths:    []string{"/", "/other"},
			matched:  []string{"/app/y"},
		},
		{
			// A placed matcher loads the session for the CEL one after it;
			// on a path the handler does not match it must load nothing.
			name:     "CEL matcher after a placed one, path match",
			sessions: "session /app/* {\n\t\t$STORE\n\t}\n\t@never session nokey\n\trespond @never \"never\" 418\n\t@admins expression session('role', 'admin')\n\trespond @admins \"admin area\" 200",
			login:    "/app/login",
			paths:    []string{"/", "/other"},
			matched:  []string{"/app/x"},
		},
		{
			name:     "placed matcher with not, path match",
			sessions: "session /app/* {\n\t\t$STORE\n\t}\n\t@anon {\n\t\tnot session role\n\t\tnot path /app/login\n\t}\n\trespond @anon \"anonymous\" 200",
			login:    "/app/login",
			paths:    nil, // checked below: on unmatched paths the request is anonymous
			matched:  nil,
		},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			s := newMatchedSite(t, tc.sessions)
			admin := s.visitor()
			res := admin.get(tc.login, "X-Session-Set-Role: admin")
			if admin.sid == "" {
				t.Fatalf("the login on a matched path issued no session: %d %s", res.StatusCode, res.body)
			}
			for _, p := range tc.matched {
				if got := admin.get(p); string(got.body) != "admin area" {
					t.Fatalf("%s: the matcher did not see the session on a path the handler matches: %d %q", p, got.StatusCode, got.body)
				}
			}
			for _, p := range tc.paths {
				got := admin.get(p)
				if string(got.body) == "admin area" {
					t.Errorf("%s: the session matcher authorized with a session its handler does not serve on this path (the handler matches only its own paths)", p)
				}
			}
			if strings.Contains(tc.sessions, "@anon") {
				got := admin.get("/other")
				if string(got.body) != "anonymous" {
					t.Errorf("/other: `not session role` did not match on a path the handler gives no session to: %d %q", got.StatusCode, got.body)
				}
				got = admin.get("/app/z")
				if got.StatusCode != http.StatusOK || string(got.body) == "anonymous" {
					t.Errorf("/app/z: `not session role` matched a request with the admin's session: %q", got.body)
				}
			}
		})
	}
}
