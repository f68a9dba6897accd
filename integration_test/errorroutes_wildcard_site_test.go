package integration_test

import "testing"

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
	rows := []errorRouteCase{
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
		t.Run(tc.name, func(t *testing.T) { tc.run(t) })
	}
}
