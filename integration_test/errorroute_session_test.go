package integration_test

// A request that passes a session handler a second time, in the site's
// error routes: a `session` written inside handle_errors, or a named
// route with the site's session that an error route invokes again. Caddy
// runs the error routes after the site's routes failed; the session
// handler there must act as the error guard does, not as a second,
// unguarded session handler.

import (
	"maps"
	"net/http"
	"strings"
	"testing"
)

// TestSessionInAnErrorRouteAppliesNoCommand: the site's routes fail (a
// 404, a 403 of the CSRF check), and handle_errors reaches a session
// handler and then the app, which answers with commands. An error
// response is not a success (README, "Error routes"; SECURITY.md: never
// on error routes), whatever status the error route gives it: nothing
// is applied, no cookie is set, none of the app's commands reaches the
// client. And the error route gets only what the site's handler
// forwarded before the error: a cross-site POST the CSRF check refused
// reaches the app behind the error route without the user's session, so
// that handle_errors cannot carry out, as the user, the forged request
// the site refused. Before, the handler in the error route loaded the
// session again (or took over the site's load), forwarded it to the app
// and applied the app's login of another user, with a new cookie, on the
// answer to the forged request.
func TestSessionInAnErrorRouteAppliesNoCommand(t *testing.T) {
	const site = `http://127.0.0.1:$PORT {
	session {
		$STORE
		csrf
	}
	handle /missing {
		error 404
	}
	reverse_proxy $APP
	handle_errors {
		session {
			$STORE
		}
		reverse_proxy $APP
	}
}`
	const named = `&(sess) {
	session {
		$STORE
		csrf
	}
}
http://127.0.0.1:$PORT {
	route {
		invoke sess
		handle /missing {
			error 404
		}
		reverse_proxy $APP
	}
	handle_errors {
		route {
			invoke sess
			reverse_proxy $APP
		}
	}
}`
	const statusCodes = `http://127.0.0.1:$PORT {
	session {
		$STORE
		csrf
	}
	handle /missing {
		error 404
	}
	reverse_proxy $APP
	handle_errors 403 404 {
		session {
			$STORE
		}
		reverse_proxy $APP
	}
}`
	configs := []struct{ name, config string }{
		{"session inside handle_errors", site},
		{"session inside handle_errors with status codes", statusCodes},
		{"a named route with the session, invoked by the site and by its error route", named},
	}
	requests := []struct {
		name, method, path string
		headers            []string
		// forwarded: the site's handler forwarded the session before the
		// error, so the error route's app may see the user
		forwarded bool
	}{
		{"a 404 of the site", http.MethodGet, "/missing", nil, true},
		{"a forged cross-site POST that the CSRF check refuses", http.MethodPost, "/transfer",
			[]string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, false},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range configs {
			t.Run(c.name, func(t *testing.T) {
				s, _ := newSiteFrom(t, store, c.config)
				for _, req := range requests {
					t.Run(req.name, func(t *testing.T) {
						alice := login(t, s, "alice")
						before := alice.sid
						r := alice.do(req.method, req.path, orders(req.headers,
							"X-Session-Set-User: mallory", "X-Session-Set-Role: admin", "X-Session-Flash-Note: hi")...)
						if !strings.Contains(string(r.body), `"headers"`) {
							t.Fatalf("the error route did not reach the app: %d %q", r.StatusCode, r.body)
						}
						if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
							t.Errorf("the answer of an error route set cookies %q", c)
						}
						if alice.sid != before {
							t.Errorf("the error route gave the visitor another session cookie")
						}
						user := r.seen.Headers.Get("X-Session-User")
						switch {
						case req.forwarded && user != "alice":
							t.Errorf("the error route's app saw user %q, want alice, whom the site's handler forwarded", user)
						case !req.forwarded && user != "":
							t.Errorf("the error route's app saw user %q for a request the site's session refused: the refused request was carried out as the user", user)
						}
						want := map[string]string{"user": "alice", "cart": "apple"}
						if got := sessionOf(t, s, "sid="+before); !maps.Equal(got, want) {
							t.Errorf("session after the error = %v, want %v: the error route's commands were applied", got, want)
						}
						// A visitor without a session: the app's login on
						// the error route starts none.
						anon := s.visitor()
						r = anon.do(req.method, req.path, orders(req.headers, "X-Session-Set-User: mallory")...)
						if c := r.Header.Values("Set-Cookie"); len(c) != 0 || anon.sid != "" {
							t.Errorf("the error route's login started a session for a visitor without one: cookies %q", c)
						}
						if user := r.seen.Headers.Get("X-Session-User"); user != "" {
							t.Errorf("the error route's app saw user %q for a visitor without a session", user)
						}
					})
				}
			})
		}
	})
}
