package integration_test

import (
	"net/http"
	"testing"
)

// forward_auth is a reverse_proxy whose handle_response, on the auth
// service's 2xx, runs the rest of the site's routes. The auth service's
// "go on" sets the upstream status placeholder as an app's answer does,
// but the user sees none of it: a refusal of Caddy's after it (an
// `error`, file_server's 404, basic_auth's 401) is one that no app
// answered, and must leave the flash values for the next navigation, as
// the same refusal does without forward_auth on the way.

var forwardAuthRefusalRows = []refusalRow{
	{name: "error 403 after forward_auth let the request in",
		handlers: "forward_auth $APP {\n\t\t\turi /auth\n\t\t}\n\t\terror /admin* \"Forbidden\" 403",
		path:     "/admin", status: http.StatusForbidden, kept: true},
	{name: "file_server's 404 after forward_auth let the request in",
		handlers: "forward_auth $APP {\n\t\t\turi /auth\n\t\t}\n\t\thandle_path /static/* {\n\t\t\troot * $ROOT\n\t\t\tfile_server\n\t\t}",
		path:     "/static/missing.html", status: http.StatusNotFound, kept: true},
	{name: "basic_auth's 401 after forward_auth let the request in",
		handlers: "forward_auth $APP {\n\t\t\turi /auth\n\t\t}\n\t\tbasic_auth /admin* {\n\t\t\tbob " + refusalAuthHash + "\n\t\t}",
		path:     "/admin", status: http.StatusUnauthorized, kept: true},
	{name: "error 404 that an app behind handle_errors renders, after forward_auth let the request in",
		handlers: "forward_auth $APP {\n\t\t\turi /auth\n\t\t}\n\t\thandle /gone {\n\t\t\terror 404\n\t\t}",
		errors:   "handle_errors 404 {\n\t\treverse_proxy $APP\n\t}", path: "/gone", status: http.StatusOK, kept: true, errorPage: true},

	// The controls: the app behind forward_auth answered, or the auth
	// service refused.
	{name: "the app's 200 after forward_auth let the request in",
		handlers: "forward_auth $APP {\n\t\t\turi /auth\n\t\t}",
		path:     "/page", status: http.StatusOK},
	{name: "the auth service's 401",
		handlers: "forward_auth $APP {\n\t\t\turi /auth\n\t\t}",
		path:     "/page", headers: []string{"Test-Status", "401"}, status: http.StatusUnauthorized},
}

// TestFlashKeptWhenCaddyRefusesAfterForwardAuth: see above.
func TestFlashKeptWhenCaddyRefusesAfterForwardAuth(t *testing.T) {
	runRefusals(t, forwardAuthRefusalRows)
}
