package integration_test

// Error routes (handle_errors) run outside the session handler. The
// session directive adds a guard in front of them: no namespace header
// leaves Caddy on an error response, no command on one is applied, and a
// site without handle_errors answers errors exactly as before.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestErrorRoutesSendNoSessionHeaders: a request fails in the site's
// routes, and its handle_errors proxies to the app, which answers with
// commands in the namespace. None reaches the client, none is applied.
func TestErrorRoutesSendNoSessionHeaders(t *testing.T) {
	rows := []struct {
		name   string
		config string
		// the header prefixes of the site's sessions, default X-Session-:
		// the app's commands are sent in each; the first is the site-wide
		// session's, whose cookie is sid
		prefixes []string
		// path: the failing request; want: the body the client gets
		// ("app" for the app's JSON answer)
		requests []struct{ path, want string }
	}{
		{name: "handle_errors proxies every error to the app", config: `
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	handle /boom {
		error 500
	}
	reverse_proxy $APP
	handle_errors {
		rewrite * /errpage
		reverse_proxy $APP
	}
}`, requests: []struct{ path, want string }{{"/boom", "app"}}},

		{name: "handle_errors with status codes, beside a catch-all", config: `
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	handle /missing {
		error 404
	}
	handle /boom {
		error 503
	}
	handle /teapot {
		error 418
	}
	reverse_proxy $APP
	handle_errors 404 410 {
		reverse_proxy $APP
	}
	handle_errors 5xx {
		rewrite * /errpage
		reverse_proxy $APP
	}
	handle_errors {
		respond "other error"
	}
}`, requests: []struct{ path, want string }{{"/missing", "app"}, {"/boom", "app"}, {"/teapot", "other error"}}},

		{name: "a custom header prefix", prefixes: []string{"X-Sess-"}, config: `
http://127.0.0.1:$PORT {
	session {
		$STORE
		header_prefix X-Sess-
	}
	handle /boom {
		error 500
	}
	reverse_proxy $APP
	handle_errors 5xx {
		reverse_proxy $APP
	}
}`, requests: []struct{ path, want string }{{"/boom", "app"}}},

		{name: "a site with no host, whose error routes are the server's own", config: `
http://:$PORT {
	session {
		$STORE
	}
	handle /boom {
		error 500
	}
	reverse_proxy $APP
	handle_errors 5xx {
		reverse_proxy $APP
	}
}`, requests: []struct{ path, want string }{{"/boom", "app"}}},

		{name: "two sessions, two prefixes", prefixes: []string{"X-Session-", "X-Sess-"}, config: `
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	session /boom {
		store bolt $DB2
		header_prefix X-Sess-
		cookie other
	}
	handle /boom {
		error 500
	}
	reverse_proxy $APP
	handle_errors {
		reverse_proxy $APP
	}
}`, requests: []struct{ path, want string }{{"/boom", "app"}}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			store := "store bolt " + filepath.Join(t.TempDir(), "sessions.db")
			config := strings.ReplaceAll(tc.config, "$DB2", filepath.Join(t.TempDir(), "other.db"))
			s, _ := newSiteFrom(t, store, config)
			if tc.prefixes == nil {
				tc.prefixes = []string{"X-Session-"}
			}
			var commands []string
			for _, p := range tc.prefixes {
				commands = append(commands, p+"Set-Errseen: 1", p+"Set-User: eve", p+"Destroy: true")
			}
			main := tc.prefixes[0]
			for _, req := range tc.requests {
				t.Run(req.path, func(t *testing.T) {
					// A visitor with a session, and one without.
					alice := s.visitor()
					expectStatus(t, alice.get("/login", main+"Set-User: alice"), http.StatusOK)
					if alice.sid == "" {
						t.Fatal("the login issued no session")
					}
					for _, v := range []*visitor{alice, s.visitor()} {
						r := v.get(req.path, commands...)
						if req.want == "app" {
							// The app's answer, so the error route ran.
							if !strings.Contains(string(r.body), `"headers"`) {
								t.Fatalf("the error route did not reach the app: %d %q", r.StatusCode, r.body)
							}
						} else if string(r.body) != req.want {
							t.Fatalf("body %q, want %q", r.body, req.want)
						}
						for _, p := range tc.prefixes {
							assertNoPrefix(t, r.Header, p)
						}
						if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
							t.Fatalf("an error response set cookies %q", c)
						}
					}
					// Nothing was applied: the session is as the login left it.
					if got := alice.get("/").seen.Headers; got.Get(main+"User") != "alice" || got.Get(main+"Errseen") != "" {
						t.Fatalf("after the errors the app sees %q", got)
					}
				})
			}
		})
	}
}

// assertNoPrefix fails if a header of h starts with prefix, in any
// spelling.
func assertNoPrefix(t *testing.T, h http.Header, prefix string) {
	t.Helper()
	fold := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }
	for name := range h {
		if strings.HasPrefix(fold(name), fold(prefix)) {
			t.Errorf("namespace header %q reached the client", name)
		}
	}
	for _, line := range h.Values("Trailer") {
		if strings.Contains(fold(line), fold(prefix)) {
			t.Errorf("the response announces a namespace trailer: %q", line)
		}
	}
}

// TestErrorRoutesBeforeTheSessionAreRefused: a handle_errors block with
// status codes written above the session directive would run before the
// guard, so Caddy refuses the config, saying what to move.
func TestErrorRoutesBeforeTheSessionAreRefused(t *testing.T) {
	caddytest.AssertLoadError(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	handle_errors 404 {
		respond "not here"
	}
	session {
		store bolt %s
	}
	respond "ok"
}`, adminPort, freePort(t), filepath.Join(t.TempDir(), "s.db")), "caddyfile",
		"write the session directive above every handle_errors block of the site that names status codes")
}

// TestErrorsWithoutHandleErrorsAreUnchanged: a site with session but no
// handle_errors answers errors as the same site without session does, on
// another server of the same Caddy: same status, headers and (empty) body;
// and Caddy's log has the 5xx at error level, as without the plugin.
func TestErrorsWithoutHandleErrorsAreUnchanged(t *testing.T) {
	// With a host, the site's error routes are a subroute of the server's;
	// without one, they are the server's own.
	for name, address := range map[string]string{"with a host": "http://127.0.0.1:%d", "without a host": "http://:%d"} {
		t.Run(name, func(t *testing.T) { errorsWithoutHandleErrors(t, address) })
	}
}

func errorsWithoutHandleErrors(t *testing.T, address string) {
	s, _ := newBareSite(t, "")
	other := freePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	root := t.TempDir() // empty: every file is missing
	routes := fmt.Sprintf(`
	handle /boom {
		error "kaboom" 500
	}
	handle /teapot {
		error "short and stout" 418
	}
	handle /down {
		reverse_proxy 127.0.0.1:%d
	}
	file_server {
		root %s
	}`, freePort(t), root) // nothing listens on the proxy's port: a 502
	s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	log {
		output file %s
		format json
		level INFO
	}
}
%s {
	session {
		store bolt %s
	}%s
}
http://127.0.0.1:%d {%s
}
`, adminPort, logFile, fmt.Sprintf(address, s.port), filepath.Join(t.TempDir(), "s.db"), routes, other, routes), "caddyfile")

	get := func(port int, path string) (*http.Response, string) {
		t.Helper()
		res, err := s.tester.Client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&b)
		return res, b.String()
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/boom", 500}, {"/teapot", 418}, {"/down", 502}, {"/missing.html", 404}} {
		withSession, body := get(s.port, tc.path)
		without, otherBody := get(other, tc.path)
		if withSession.StatusCode != tc.status || without.StatusCode != tc.status {
			t.Errorf("%s: status %d with session, %d without; want %d", tc.path, withSession.StatusCode, without.StatusCode, tc.status)
		}
		if body != otherBody {
			t.Errorf("%s: body %q with session, %q without", tc.path, body, otherBody)
		}
		names := func(h http.Header) []string {
			out := slices.Collect(maps.Keys(h))
			slices.Sort(out)
			return slices.DeleteFunc(out, func(n string) bool { return n == "Date" })
		}
		if a, b := names(withSession.Header), names(without.Header); !slices.Equal(a, b) {
			t.Errorf("%s: headers %q with session, %q without", tc.path, a, b)
		}
	}

	// Every 5xx is in the log at error level, once per server; the rest
	// are not.
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for line := range strings.Lines(string(raw)) {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "error" {
			msg := entry.Msg
			if strings.Contains(msg, "connection refused") {
				msg = "connection refused"
			}
			count[msg]++
		}
	}
	want := map[string]int{"kaboom": 2, "connection refused": 2}
	if !maps.Equal(count, want) {
		t.Errorf("error-level log lines by message: %v, want %v\n%s", count, want, raw)
	}
}

// TestErrorGuardInJSON: in a JSON config the guard is the first of the
// server's error routes, as the README says. It removes the namespace
// however the error route starts its response (here a handler that never
// calls WriteHeader, as in TestResponseStartedWithoutWriteHeader); and a
// config that puts it after another error route is refused.
func TestErrorGuardInJSON(t *testing.T) {
	s, _ := newBareSite(t, "")
	config := func(errorRoutes string) string {
		return fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:%d"],
		"routes": [
			{"match": [{"path": ["/boom"]}], "handle": [{"handler": "error", "status_code": 500}]},
			{"handle": [
				{"handler": "session", "store": {"backend": "bolt", "path": %q}},
				{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
			]}
		],
		"errors": {"routes": %s}
	}}}}
}`, adminPort, s.port, filepath.Join(t.TempDir(), "s.db"), s.up.addr(), errorRoutes)
	}
	s.tester.InitServer(config(`[
		{"handle": [{"handler": "session_errors"}]},
		{"handle": [{"handler": "test_stream_first"}]}
	]`), "json")
	for _, how := range []string{"flush", "controller", "copy", "readfrom"} {
		t.Run(how, func(t *testing.T) {
			r := s.visitor().do(http.MethodGet, "/boom", orders([]string{"Test-Start", how}, "X-Session-Set-User: eve", "x_session_destroy: true")...)
			// do has checked that no namespace header came back.
			if got := r.seen.Headers.Get("Test-Start"); got != how {
				t.Fatalf("the error route did not answer: %d %q", r.StatusCode, r.body)
			}
			if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("an error response set cookies %q", c)
			}
		})
	}

	caddytest.AssertLoadError(t, config(`[
		{"handle": [{"handler": "static_response", "body": "oops"}], "match": [{"path": ["/x"]}]},
		{"handle": [{"handler": "session_errors"}]}
	]`), "json", "session_errors is error route 1")
}
