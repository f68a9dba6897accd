package integration_test

// Flash values and the responses no app gave. A navigation takes the
// session's flash values before it goes on; what comes after the session
// handler may refuse or redirect it before any app answered: the recipe's
// `respond @not_admin "Forbidden" 403` and `redir @anonymous /login`,
// `error`, basic_auth's 401, request_body's 413, file_server's 404. The
// user saw no page of the app, so the message the app queued for them
// must wait for the next navigation, as it does after a failed response.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// refusalAuthHash is the bcrypt hash of "secret", for basic_auth, at
// bcrypt's lowest cost: a wrong password is hashed per request, and at
// the cost Caddy's hash-password uses that takes seconds under -race.
const refusalAuthHash = `$2a$04$TGpbygS7B1zvETMfwzDYC.b4qn4Et0Y9NJMcV4sokJDway2ouIrGK`

type refusalRow struct {
	name string
	// handlers run after the session handler, in a route, before
	// `reverse_proxy $APP`; $ROOT is a directory with index.html.
	handlers string
	method   string
	path     string
	body     string
	chunked  bool // the body is sent without a Content-Length
	// top: directives of the site before its route; errors: its
	// handle_errors.
	top, errors string
	// errorPage: the error routes reach the app, which must not get the
	// values it keeps.
	errorPage bool
	headers   []string
	status    int  // what the client gets
	kept      bool // the flash value waits for the next navigation
}

var refusalRows = []refusalRow{
	// Caddy answers, no app does: the value waits.
	{name: "error 403 in place of the recipe's respond", handlers: `error /admin* "Forbidden" 403`,
		path: "/admin", status: http.StatusForbidden, kept: true},
	{name: "error 404 of a handle", handlers: "handle /gone {\n\t\t\terror 404\n\t\t}",
		path: "/gone", status: http.StatusNotFound, kept: true},
	{name: "error 401", handlers: `error /private* "log in first" 401`,
		path: "/private", status: http.StatusUnauthorized, kept: true},
	{name: "basic_auth without credentials", handlers: "basic_auth /admin* {\n\t\t\tbob " + refusalAuthHash + "\n\t\t}",
		path: "/admin", status: http.StatusUnauthorized, kept: true},
	{name: "basic_auth with wrong credentials", handlers: "basic_auth /admin* {\n\t\t\tbob " + refusalAuthHash + "\n\t\t}",
		path: "/admin", headers: []string{"Authorization", "Basic Ym9iOndyb25n"}, status: http.StatusUnauthorized, kept: true},
	{name: "request_body max_size refusing a Content-Length", handlers: "request_body {\n\t\t\tmax_size 16\n\t\t}",
		method: http.MethodPost, path: "/upload", body: strings.Repeat("x", 64), status: http.StatusRequestEntityTooLarge, kept: true},
	{name: "file_server of a file that is not there", handlers: "handle_path /static/* {\n\t\t\troot * $ROOT\n\t\t\tfile_server\n\t\t}",
		path: "/static/missing.html", status: http.StatusNotFound, kept: true},
	{name: "error 404 that an app behind handle_errors renders", handlers: "handle /gone {\n\t\t\terror 404\n\t\t}",
		errors: "handle_errors 404 {\n\t\treverse_proxy $APP\n\t}", path: "/gone", status: http.StatusOK, kept: true, errorPage: true},
	{name: "request_body max_size refusing a streamed body that was on its way to the app",
		top: "request_body {\n\t\tmax_size 16\n\t}", method: http.MethodPost, path: "/upload",
		body: strings.Repeat("x", 1<<16), chunked: true, status: http.StatusRequestEntityTooLarge, kept: true},
	{name: "abort", handlers: `abort /drop`, path: "/drop", status: 0, kept: true},

	// An app answered, or Caddy made a page: the value is used up.
	{name: "the app's 200", path: "/page", status: http.StatusOK},
	{name: "the app's 404", path: "/missing", headers: []string{"Test-Status", "404"}, status: http.StatusNotFound},
	{name: "the app's 403", path: "/admin", headers: []string{"Test-Status", "403"}, status: http.StatusForbidden},
	{name: "the app's 303", path: "/form", headers: []string{"Test-Status", "303", "Test-Header", "Location: /page"}, status: http.StatusSeeOther},
	{name: "the app's 401 that handle_response turns into an error", handlers: "",
		path: "/private", headers: []string{"Test-Status", "401"}, status: http.StatusUnauthorized},
	{name: "the app's 413 to a body it refused", handlers: ``,
		method: http.MethodPost, path: "/upload", body: "small", headers: []string{"Test-Status", "413"}, status: http.StatusRequestEntityTooLarge},
	// A response Caddy writes itself is one to the request, as an app
	// that runs in Caddy writes its own (FrankenPHP): the plugin cannot
	// tell them apart, and the values are used up (README, "Flash values").
	{name: "respond 403 of the protected-area recipe", handlers: `respond /admin* "Forbidden" 403`,
		path: "/admin", status: http.StatusForbidden},
	{name: "redir of the protected-area recipe", handlers: `redir /old /page 302`,
		path: "/old", status: http.StatusFound},
	// forward_auth's refusal is its auth service's answer, which Caddy
	// relays as it does an app's: an upstream answered.
	{name: "forward_auth refusing", handlers: "forward_auth /guarded* $APP {\n\t\t\turi /auth\n\t\t}",
		path: "/guarded", headers: []string{"Test-Status", "401"}, status: http.StatusUnauthorized},
	{name: "respond 200 that shows the value", handlers: `respond /note "{http.request.header.X-Session-Flash-Notice}" 200`,
		path: "/note", status: http.StatusOK},
	{name: "file_server of a page", handlers: "handle_path /static/* {\n\t\t\troot * $ROOT\n\t\t\tfile_server\n\t\t}",
		path: "/static/index.html", status: http.StatusOK},
}

// refusalSite is a site whose route runs the session handler, then
// handlers, then the app; the app's 401 is turned into an error by
// handle_response, as a site that renders its own login page does.
func refusalSite(t *testing.T, store string, row refusalRow) *site {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<p>static</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	handlers := strings.ReplaceAll(row.handlers, "$ROOT", root)
	s, _ := newSiteFrom(t, store, `http://127.0.0.1:$PORT {
	`+row.top+`
	`+row.errors+`
	route {
		session {
			$STORE
		}
		`+handlers+`
		reverse_proxy $APP {
			@denied status 401
			handle_response @denied {
				error "the app refused" 401
			}
		}
	}
}
`)
	// A browser follows a redirect with a navigation of its own; the test
	// looks at the redirect.
	s.tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s
}

// TestFlashKeptWhenNoAppAnswered: a navigation that Caddy refuses or
// redirects on its own, with no app's answer, leaves the flash value for
// the next navigation; one an app answered (any status below 500 but 425,
// as README says) or a page Caddy made uses it up.
func TestFlashKeptWhenNoAppAnswered(t *testing.T) {
	runRefusals(t, refusalRows)
}

// runRefusals checks each row on bolt and on Redis: a flash value saved,
// then the row's navigation (checkRefusal).
func runRefusals(t *testing.T, rows []refusalRow) {
	eachStore(t, func(t *testing.T, store string) {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				s := refusalSite(t, store, row)
				v := s.visitor()
				expectStatus(t, v.get("/save", "X-Session-Set-User: alice", "X-Session-Flash-Notice: Saved"), http.StatusOK)
				if v.sid == "" {
					t.Fatal("the app's flash value started no session")
				}
				checkRefusal(t, s, v, row)
			})
		}
	})
}

// checkRefusal sends row's navigation and then one to the app, which
// must get the value if row keeps it, and not otherwise.
func checkRefusal(t *testing.T, s *site, v *visitor, row refusalRow) {
	t.Helper()
	method := row.method
	if method == "" {
		method = http.MethodGet
	}
	headers := append([]string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document",
		"Accept", "text/html"}, row.headers...)
	if row.status == 0 {
		// The connection is closed with no response.
		if res, _, err := rawExchange(t, s, method+" "+row.path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid="+v.sid+
			"\r\nSec-Fetch-Mode: navigate\r\nAccept: text/html\r\n\r\n"); err == nil {
			t.Fatalf("%s %s got a %d, want the connection closed with no response", method, row.path, res.StatusCode)
		}
	} else {
		var body io.Reader
		if row.body != "" {
			body = strings.NewReader(row.body)
			if row.chunked {
				body = io.MultiReader(body) // of no length the client knows
			}
		}
		r := v.doBody(method, row.path, body, headers...)
		expectStatus(t, r, row.status)
		if row.errorPage {
			if !strings.Contains(string(r.body), `"headers"`) {
				t.Fatalf("the error route did not reach the app: %q", r.body)
			}
			if got := r.seen.Headers.Get("X-Session-Flash-Notice"); got != "" {
				t.Errorf("the app behind the error route got flash value %q, which the next navigation gets again", got)
			}
		}
	}
	next := v.navigate(http.MethodGet, "/page")
	expectStatus(t, next, http.StatusOK)
	got := next.seen.Headers.Get("X-Session-Flash-Notice")
	switch {
	case row.kept && got != "Saved":
		t.Errorf("after %s, the next navigation got flash value %q, want %q: a response no app gave used it up", row.name, got, "Saved")
	case !row.kept && got != "":
		t.Errorf("after %s, the next navigation got flash value %q again, want it used up", row.name, got)
	}
}
