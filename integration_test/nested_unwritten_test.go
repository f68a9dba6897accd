package integration_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// intercept answers with the response it intercepted when the routes of
// its handle_response write nothing (they only set a header, or their
// respond does not match): its status, headers and body. A session
// handler among those routes must leave it so, and not write a 200 of
// its own because nothing was written beneath it: an app's 404 or 500
// reached the client as a 200.

// TestNestedSessionInAHandleResponseThatWritesNothing: the first app
// answers with each status; a handle_response that matches it holds a
// session handler (or none, the control) and writes nothing.
func TestNestedSessionInAHandleResponseThatWritesNothing(t *testing.T) {
	configs := []twiceConfig{
		{"no session in the handle_response", `
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	intercept {
		@again status 4xx 5xx
		handle_response @again {
			header X-Intercepted yes
		}
	}
	reverse_proxy $FIRST
}`},
		{"a session in the handle_response", `
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	intercept {
		@again status 4xx 5xx
		handle_response @again {
			session {
				$STORE
			}
			header X-Intercepted yes
		}
	}
	reverse_proxy $FIRST
}`},
		{"the site's session invoked again in the handle_response", `
&(sess) {
	session {
		$STORE
	}
}
http://127.0.0.1:$PORT {
	invoke sess
	intercept {
		@again status 4xx 5xx
		handle_response @again {
			invoke sess
			header X-Intercepted yes
		}
	}
	reverse_proxy $FIRST
}`},
		{"a session in the handle_response with a respond that does not match", `
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	intercept {
		@again status 4xx 5xx
		handle_response @again {
			session {
				$STORE
			}
			@never path /never
			respond @never "never" 200
		}
	}
	reverse_proxy $FIRST
}`},
	}
	statuses := []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusInternalServerError, http.StatusServiceUnavailable}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range configs {
			t.Run(c.name, func(t *testing.T) {
				s := newTwiceSite(t, c, store, "", namedApp{"First"}, namedApp{"Second"})
				v := s.visitor()
				expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
				seen := "" // the last status whose command applied
				for _, status := range statuses {
					t.Run(http.StatusText(status), func(t *testing.T) {
						code := strconv.Itoa(status)
						r := v.do(http.MethodGet, "/page", "Test-First-Status", code, "Test-First-Header", "X-Session-Set-Seen: "+code)
						expectStatus(t, r, status)
						if got := r.seen.Headers.Get("X-Session-User"); got != "alice" {
							t.Fatalf("the app's page, sent as it was intercepted, shows user %q, want alice", got)
						}
						if !strings.Contains(string(r.body), `"uri":"/page"`) {
							t.Fatalf("the client did not get the intercepted body: %s", r.body)
						}
						// The app's commands apply by its status: on a
						// 4xx, not on a 5xx.
						want := map[string]string{"user": "alice", "seen": code}
						if status >= http.StatusInternalServerError {
							want["seen"] = seen
						}
						if got := peekSession(t, s, v.sid); !mapsEqual(got, want) {
							t.Fatalf("the session after the app's %d = %v, want %v", status, got, want)
						}
						seen = want["seen"]
					})
				}
			})
		}
	})
}
