package integration_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// nestedWithdrawn is derivedWithheld with a second session handler
// nested beneath the site's, for the path the test's request takes: it
// shares the site's load (one store, cookie and realm), and differs in
// $INNER, which leaves it not judging the answer itself. The site's
// handler judges it, and withholds it. Its error routes mark a request
// whose session a CEL session() finds alice's (a placed matcher there is
// refused: two handlers of the site have the cookie).
var nestedWithdrawn = twiceConfig{"a session in a handle beneath the site's, whose error routes proxy to the app", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	handle /poll {
		session {
			$STORE
			$INNER
		}
		reverse_proxy $FIRST
	}
	handle_errors {
		` + derivedMatched + `
		reverse_proxy $SECOND {
			` + derivedShown + `
		}
	}
	reverse_proxy $FIRST
}`}

// TestWithdrawnByTheOuterHandlerMatchesNoMatcher: a request passes two
// session handlers that share one load, the site's and one nested under
// a path, which keeps the tunnels of its path open (`tunnels keep`) and
// so does not judge the answers it passes on. The session ends while the
// app works on the request; the site's handler judges the answer,
// withholds it, and takes the session off the request for the error
// routes (withdraw). README: the error routes get "nothing of the
// session", and, as the error routes' matchers are made to find no
// withdrawn session, a session matcher must not match the ended session
// there either. The site's handler withdrew its own state, but the
// request's load, and the state a CEL session() reads, were the nested
// handler's by then: the error routes' CEL session() found the session
// there, and matched the user whose session had ended
// (an admin's error pages for the device that was logged out).
func TestWithdrawnByTheOuterHandlerMatchesNoMatcher(t *testing.T) {
	rows := []struct {
		name   string
		end    string   // Test-End: revoke, or tab for another request
		device string   // of the other request: "" the same browser, "other" alice's other device
		other  []string // the other request's commands
	}{
		{"an admin's revocation", "revoke", "", nil},
		{"a logout in another tab", "tab", "", []string{"X-Session-Destroy: true"}},
		{"a logout everywhere in another tab", "tab", "", []string{"X-Session-Destroy-All: true"}},
		{"a login as another user in another tab", "tab", "", []string{"X-Session-Set-User: bob"}},
		{"a logout everywhere on the user's other device", "tab", "other", []string{"X-Session-Destroy-All: true"}},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				app := new(endingApp)
				c := nestedWithdrawn
				const csrf = "csrf {\n\t\t\ttoken\n\t\t}"
				c.sites = strings.Replace(c.sites, "$INNER", "idle_timeout 2h\n\t\t\ttunnels keep\n\t\t\t"+csrf, 1)
				s := newTwiceSite(t, c, store, "idle_timeout 2h\n\t\ttunnels 1h\n\t\t"+csrf, app, namedApp{"Second"})
				app.site.Store(s)
				v := s.visitor()
				expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
				if v.sid == "" {
					t.Fatal("the login set no cookie")
				}
				hash := session.HashID(v.sid).Short()
				token := v.do(http.MethodGet, "/page").seen.Headers.Get("X-Session-Meta-Csrf-Token")
				if token == "" {
					t.Fatal("the app got no csrf token")
				}
				cookie := "sid=" + v.sid
				if row.device == "other" {
					other := s.visitor()
					other.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice")
					if other.sid == "" || other.sid == v.sid {
						t.Fatal("the other device's login set no cookie of its own")
					}
					cookie = "sid=" + other.sid
				}
				headers := []string{"Test-End", row.end, "Test-Cookie", cookie}
				for _, o := range row.other {
					headers = append(headers, "Test-End-Header", o)
				}
				r := v.do(http.MethodGet, "/poll", headers...)
				// The error route's app answers the withheld request (the
				// app's own answer has no Test-Placeholder).
				if r.seen.URI != "/poll" || len(r.seen.Headers.Values("Test-Placeholder")) == 0 {
					t.Fatalf("the error route did not answer the withheld request: %d %q", r.StatusCode, r.body)
				}
				expectNothingDerived(t, r, "the error route of an answer the site's handler withheld", hash, token)
				expectNoCookie(t, r.Response, "the error page of a withheld answer")
			})
		}
	})
}
