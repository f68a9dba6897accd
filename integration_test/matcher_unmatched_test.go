package integration_test

// A session directive with a matcher (`session /app/*`, which the README
// recommends for a site whose error routes reach the app) used to be a
// matcher on the handler's route: every request it did not match passed
// by the handler untouched, to the same app. A client's X-Session-User
// reached the app there, and so did the raw session ID in the Cookie
// header; an app's command there reached the client.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// newMatchedSite starts Caddy with the session blocks given (each a whole
// directive, with $STORE and $STORE2 for two bolt stores) in front of a
// test upstream.
func newMatchedSite(t *testing.T, sessions string) *site {
	t.Helper()
	s := &site{
		t:      t,
		tester: caddytest.NewTester(t),
		port:   freePort(t),
		db:     filepath.Join(t.TempDir(), "sessions.db"),
		up:     startUpstream(t),
	}
	s.tester.Client.Jar = nil
	sessions = strings.NewReplacer("$STORE2", "store bolt "+filepath.Join(t.TempDir(), "other.db"),
		"$STORE", "store bolt "+s.db).Replace(sessions)
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://127.0.0.1:%d {
	%s
	reverse_proxy %s
}
`, adminPort, s.port, freePort(s.t), s.port, sessions, s.up.addr()))
	return s
}

// TestUnmatchedRequestsKeepTheNamespace: on the paths a
// `session <matcher>` does not match, nothing in the namespace reaches the
// app from the client or the client from the app, nor the session cookie
// the app; on the paths it matches, the session works as before.
func TestUnmatchedRequestsKeepTheNamespace(t *testing.T) {
	s := newMatchedSite(t, "session /app/* {\n\t\t$STORE\n\t}")
	alice := s.visitor()
	expectStatus(t, alice.get("/app/login", "X-Session-Set-User: alice"), http.StatusOK)
	if alice.sid == "" {
		t.Fatal("the login on a matched path issued no session")
	}
	expectSession(t, alice.get("/app/"), map[string]string{"X-Session-User": "alice"})

	rows := []struct {
		name   string
		raw    string // header lines after the request line; "\n" is sent as CRLF
		body   string
		cookie bool // send alice's cookie
	}{
		{name: "a forged header", raw: "X-Session-User: admin\n"},
		{name: "a forged header, lowercase", raw: "x-session-user: admin\n"},
		{name: "a forged header beside a session cookie", raw: "X-Session-User: admin\nX-Session-Role: root\n", cookie: true},
		{name: "a forged meta header", raw: "X-Session-Meta-Remembered: true\n"},
		{name: "a forged request trailer", raw: "Transfer-Encoding: chunked\nTrailer: X-Session-User\n",
			body: "5\r\nhello\r\n0\r\nX-Session-User: admin\r\n\r\n"},
		{name: "Connection names a namespace header", raw: "Connection: X-Session-User\nX-Other: kept\n"},
		{name: "the session cookie alone", cookie: true},
	}
	for _, path := range []string{"/", "/public", "/api/me", "/application"} {
		for _, tc := range rows {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				raw := "POST " + path + " HTTP/1.1\r\n" + strings.ReplaceAll(tc.raw, "\n", "\r\n") + "Host: 127.0.0.1\r\n"
				if tc.cookie {
					raw += "Cookie: theme=dark; sid=" + alice.sid + "\r\n"
				}
				if tc.body == "" {
					raw += "Content-Length: 0\r\n"
				}
				raw += "Connection: close\r\n\r\n" + tc.body
				res, body, err := rawExchange(t, s, raw)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200; body %s", res.StatusCode, body)
				}
				assertNoneLeaked(t, res)
				var saw seen
				if err := json.Unmarshal(body, &saw); err != nil {
					t.Fatalf("app answer %q: %v", body, err)
				}
				if got := namespaceIn(saw.Headers); len(got) != 0 {
					t.Fatalf("the app saw the client's namespace headers on a path the session does not match: %q", saw.Headers)
				}
				for _, c := range saw.Headers.Values("Cookie") {
					if strings.Contains(c, alice.sid) {
						t.Fatalf("the app got the raw session ID on a path the session does not match: Cookie %q", c)
					}
				}
				if tc.cookie && !strings.Contains(strings.Join(saw.Headers.Values("Cookie"), ";"), "theme=dark") {
					t.Fatalf("the app lost the other cookies: %q", saw.Headers.Values("Cookie"))
				}
			})
		}
	}

	// The app's commands on an unmatched path: no namespace header reaches
	// the client, none is applied, no cookie is issued.
	for _, tc := range []struct {
		name    string
		visitor *visitor
		orders  []string
	}{
		{name: "a login", visitor: s.visitor(), orders: []string{"Test-Header", "X-Session-Set-User: mallory"}},
		{name: "a write to alice's session", visitor: &visitor{site: s, sid: alice.sid}, orders: []string{"Test-Header", "X-Session-Set-Role: admin"}},
		{name: "a logout of alice's session", visitor: &visitor{site: s, sid: alice.sid}, orders: []string{"Test-Header", "X-Session-Destroy: true"}},
		{name: "commands on a streamed response", visitor: s.visitor(), orders: []string{"Test-Header", "X-Session-Set-User: mallory", "Test-Flush", "1"}},
		{name: "a command on a 103", visitor: s.visitor(), orders: []string{"Test-Early-Hints", "X-Session-Set-User: mallory"}},
	} {
		t.Run("the app answers "+tc.name+" on an unmatched path", func(t *testing.T) {
			ex := fetch(t, tc.visitor, http.MethodGet, "/public", tc.orders...)
			if ex.res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", ex.res.StatusCode)
			}
			assertNoneLeaked(t, ex.res)
			for _, h := range ex.hints {
				assertNoNamespace(t, h)
			}
			if c := ex.res.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("a response to an unmatched path set cookies %q", c)
			}
			expectSession(t, (&visitor{site: s, sid: alice.sid}).get("/app/"), map[string]string{"X-Session-User": "alice"})
		})
	}
}

// TestTwoMatchedSessionsOfOneNamespace: two sessions of one
// namespace on disjoint paths: each forwards its own session on its paths,
// and the other, which does not match them, leaves what it forwarded.
func TestTwoMatchedSessionsOfOneNamespace(t *testing.T) {
	s := newMatchedSite(t, "session /a/* {\n\t\t$STORE\n\t\tcookie sa\n\t}\n\tsession /b/* {\n\t\t$STORE2\n\t\tcookie sb\n\t}")
	for _, tc := range []struct{ path, cookie, user string }{{"/a/", "sa", "alice"}, {"/b/", "sb", "bob"}} {
		t.Run(tc.path, func(t *testing.T) {
			v := s.visitor()
			r := v.get(tc.path+"login", "X-Session-Set-User: "+tc.user)
			expectStatus(t, r, http.StatusOK)
			var id string
			for _, c := range r.Cookies() {
				if c.Name == tc.cookie {
					id = c.Value
				}
			}
			if id == "" {
				t.Fatalf("the login on %s issued no %s cookie: %q", tc.path, tc.cookie, r.Header.Values("Set-Cookie"))
			}
			v.cookies = tc.cookie + "=" + id
			expectSession(t, v.get(tc.path), map[string]string{"X-Session-User": tc.user})
			expectSession(t, v.get(tc.path, "X-Session-Set-Cart: pear"), map[string]string{"X-Session-User": tc.user})
			expectSession(t, v.get(tc.path), map[string]string{"X-Session-User": tc.user, "X-Session-Cart": "pear"})
			expectSession(t, v.get("/elsewhere"), map[string]string{})
		})
	}
}
