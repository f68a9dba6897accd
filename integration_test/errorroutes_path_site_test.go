package integration_test

import "testing"

// TestErrorRoutesOfAPathSite: a site with a path (`localhost/app*`) has
// its handle_errors matched on its host and path, as its routes are:
// every request its session handler serves matches it, and Caddy tries
// it before a catch-all site's. That error route was taken for another
// site's (its matchers are more than hosts), so the user's own error page
// got the errors without the user's session. A path site without error
// routes of its own (its session in a handle, which adds no guard) still
// leaves its errors to the catch-all's, which get no session.
func TestErrorRoutesOfAPathSite(t *testing.T) {
	rows := []errorRouteCase{
		{name: "a path site's own handle_errors, beside a catch-all's", config: `
http://localhost:$PORT/app* {
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
}`, host: "localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "a path site's own handle_errors, beside another path site's of its host and a catch-all's", config: `
http://localhost:$PORT/app* {
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
http://localhost:$PORT/other* {
	respond "other"
	handle_errors {
		rewrite * /other-error
		reverse_proxy $C
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /catch-all-error
		reverse_proxy $C
	}
}`, host: "localhost", login: "/app/login", fail: "/app/boom", errURI: "/own-error", user: "alice"},

		{name: "a path site without error routes, its session in a handle, beside a catch-all's", config: `
http://localhost:$PORT/app* {
	handle {
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
}`, host: "localhost", login: "/app/login", fail: "/app/boom", errURI: "/catch-all-error"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}
