package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestFallThroughErrorRoutesGetNoForwardedCookie: a site whose session
// forwards its cookie (forward_cookie) and that has no handle_errors has
// its errors answered by a catch-all's or a wildcard site's handle_errors
// (errorfallthrough.go). Those routes are another site's: README promises
// the cookie of forward_cookie to the apps the handler is on the way of,
// and the handler takes it off (withdraw) before another site's error
// routes get an error of its app. Two errors reach them without the
// handler taking anything off: one raised before the handler ran
// (request_body's 413, which Caddy orders before session), and the 503 of
// a session the store failed to load. The other site's app must not get
// the raw session ID in either; the site's own error routes keep it.
func TestFallThroughErrorRoutesGetNoForwardedCookie(t *testing.T) {
	const site = `
http://a.localhost:$PORT {
	request_body {
		max_size 10
	}
	session $SCOPE {
		store faulty $DB
		$FORWARD
	}
	@down path /down /other/down
	reverse_proxy @down 127.0.0.1:1
	reverse_proxy $A
	$OWN
}
$OTHER {
	respond "other site"
	handle_errors {
		request_body {
			set "error"
		}
		rewrite * /other-error
		reverse_proxy $C
	}
}`
	const own = `handle_errors {
		request_body {
			set "error"
		}
		rewrite * /own-error
		reverse_proxy $A
	}`
	const (
		tooLarge = "a 413 before the handler"
		loadFail = "a 503 of a load that failed"
		appDown  = "a 502 of the app"
	)
	rows := []struct {
		name, other, forward, own, fault string
		scope, path                      string // the session's matcher, the failing request's path
		errURI                           string
		wantCookie                       bool // the error route's app gets the session cookie
	}{
		{"catch-all, forward_cookie, 413", "http://:$PORT", "forward_cookie", "", tooLarge, "", "", "/other-error", false},
		{"catch-all, forward_cookie, load fails", "http://:$PORT", "forward_cookie", "", loadFail, "", "", "/other-error", false},
		{"catch-all, forward_cookie, app down", "http://:$PORT", "forward_cookie", "", appDown, "", "", "/other-error", false},
		{"wildcard, forward_cookie, 413", "http://*.localhost:$PORT", "forward_cookie", "", tooLarge, "", "", "/other-error", false},
		{"wildcard, forward_cookie, load fails", "http://*.localhost:$PORT", "forward_cookie", "", loadFail, "", "", "/other-error", false},
		{"catch-all, 413", "http://:$PORT", "", "", tooLarge, "", "", "/other-error", false},
		{"catch-all, load fails", "http://:$PORT", "", "", loadFail, "", "", "/other-error", false},
		// What stays: the site's own error routes get the cookie it
		// forwards to its app.
		// The handler's cookie stays on the paths its matcher leaves
		// (README: a handler with forward_cookie on the request's way
		// keeps it), not in another site's error routes.
		{"catch-all, forward_cookie, a path the session does not match, app down", "http://:$PORT", "forward_cookie", "", appDown, "/app/*", "/other/down", "/other-error", false},
		{"catch-all, forward_cookie, a path the session does not match, 413", "http://:$PORT", "forward_cookie", "", tooLarge, "/app/*", "/other/upload", "/other-error", false},
		{"own handle_errors, forward_cookie, 413", "http://:$PORT", "forward_cookie", own, tooLarge, "", "", "/own-error", true},
		{"own handle_errors, forward_cookie, load fails", "http://:$PORT", "forward_cookie", own, loadFail, "", "", "/own-error", true},
		{"own handle_errors, forward_cookie, app down", "http://:$PORT", "forward_cookie", own, appDown, "", "", "/own-error", true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			cfg := strings.NewReplacer("$SCOPE", row.scope, "$OTHER", row.other, "$FORWARD", row.forward, "$OWN", row.own).Replace(site)
			cfg = strings.NewReplacer("$PORT", fmt.Sprint(port), "$DB", filepath.Join(t.TempDir(), "sessions.db"),
				"$A", appA.addr(), "$C", appC.addr()).Replace(cfg)
			tester := caddyOnPort(t, port, cfg)
			do := func(method, path, cookie, body string, headers ...string) (*http.Response, []byte) {
				t.Helper()
				return sendTo(t, tester, port, method, "a.localhost", path, cookie, body, headers...)
			}
			login := "/login"
			if row.scope != "" {
				login = "/app/login"
			}
			res, _ := do(http.MethodGet, login, "", "", "Test-Header", "X-Session-Set-User: alice")
			var id string
			for _, c := range res.Cookies() {
				if c.Name == "sid" {
					id = c.Value
				}
			}
			if id == "" {
				t.Fatal("the login issued no sid cookie")
			}
			cookie := "sid=" + id + "; theme=dark"

			var body []byte
			path := row.path
			switch {
			case path != "":
			case row.fault == tooLarge:
				path = "/upload"
			case row.fault == loadFail:
				path = "/page"
			default:
				path = "/down"
			}
			switch row.fault {
			case tooLarge:
				res, body = do(http.MethodPost, path, cookie, strings.Repeat("x", 100), "X-Session-User", "mallory")
			case loadFail:
				failReads.Store(true)
				t.Cleanup(func() { failReads.Store(false) })
				res, body = do(http.MethodGet, path, cookie, "", "X-Session-User", "mallory")
				failReads.Store(false)
			case appDown:
				res, body = do(http.MethodGet, path, cookie, "", "X-Session-User", "mallory")
			}
			var s seen
			if err := json.Unmarshal(body, &s); err != nil || s.URI != row.errURI {
				t.Fatalf("%s was not answered by the error route %s: %d %q", row.fault, row.errURI, res.StatusCode, body)
			}
			got := strings.Join(s.Headers.Values("Cookie"), "; ")
			if has := strings.Contains(got, id); has != row.wantCookie {
				t.Errorf("the app behind %s got the session cookie: %v, want %v (Cookie has theme: %v)",
					row.errURI, has, row.wantCookie, strings.Contains(got, "theme=dark"))
			}
			if !strings.Contains(got, "theme=dark") {
				t.Errorf("the app behind %s lost the other cookies", row.errURI)
			}
			for name, values := range s.Headers {
				if strings.HasPrefix(strings.ToLower(name), "x-session-") && (!row.wantCookie || strings.Contains(strings.Join(values, ","), "mallory")) {
					t.Errorf("the app behind %s got %s: %q", row.errURI, name, values)
				}
			}
		})
	}
}

// TestUnmatchedForwardCookieReachesNoOtherSitesErrorRoutes: a session
// with a matcher (`session /app/*`) that a request of another path passes
// keeps its cookie on it when it forwards it (forward_cookie: a handler
// on the request's way keeps it). Its errors may reach another site's
// error routes, which must not get the cookie, also when the session sits
// in a `route` block and no guard stands between them.
func TestUnmatchedForwardCookieReachesNoOtherSitesErrorRoutes(t *testing.T) {
	const config = `
http://a.localhost:$PORT {
	$OPEN
	session /app/* {
		store bolt $DB
		forward_cookie
	}
	@down path /app/down /other/down
	reverse_proxy @down 127.0.0.1:1
	reverse_proxy $A
	$CLOSE
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /other-error
		reverse_proxy $C
	}
}`
	rows := []struct{ name, open, close, path string }{
		{"in a route block, a path the session does not match", "route {", "}", "/other/down"},
		{"in a route block, a path the session matches", "route {", "}", "/app/down"},
		{"at the site's top, a path the session does not match", "", "", "/other/down"},
		{"at the site's top, a path the session matches", "", "", "/app/down"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			cfg := strings.NewReplacer("$OPEN", row.open, "$CLOSE", row.close, "$PORT", fmt.Sprint(port),
				"$DB", filepath.Join(t.TempDir(), "sessions.db"), "$A", appA.addr(), "$C", appC.addr()).Replace(config)
			tester := caddyOnPort(t, port, cfg)
			do := func(path, cookie string, commands ...string) (*http.Response, []byte) {
				t.Helper()
				return getFrom(t, tester, port, "a.localhost", path, cookie, commands...)
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
			res, body := do(row.path, "sid="+id+"; theme=dark")
			var s seen
			if err := json.Unmarshal(body, &s); err != nil || s.URI != "/other-error" {
				t.Fatalf("the 502 of %s was not answered by the catch-all's error route: %d %q", row.path, res.StatusCode, body)
			}
			got := strings.Join(s.Headers.Values("Cookie"), "; ")
			if strings.Contains(got, id) {
				t.Errorf("the catch-all's error route got the raw session ID of a.localhost's session (Cookie has theme: %v)",
					strings.Contains(got, "theme=dark"))
			}
			if !strings.Contains(got, "theme=dark") {
				t.Errorf("the catch-all's error route lost the other cookies")
			}
		})
	}
}
