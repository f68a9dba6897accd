package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// errAfterApp is the app of a site whose session may end while the app
// works on a request, and whose next handler then returns an error in
// place of an answer. A request that says Test-Meanwhile ends its
// session first, or changes it: "expire" takes 3 hours on the injected
// clock, "revoke" has an admin revoke alice; any
// other value is a command that another tab of the same browser sends
// through Caddy meanwhile, with the cookie in Test-Meanwhile-Cookie (a
// logout, another user's login, a renewal). Then Test-Fail says how the
// request fails: "drop" drops the connection (reverse_proxy's 502, the
// app went down), "500" answers a 500 that the site's routes turn into
// an error (handle_response or intercept ending in `error`).
type errAfterApp struct {
	namedApp
	port atomic.Int64 // the site's
}

func (a *errAfterApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := a.meanwhile(r); err != nil {
		http.Error(w, err.Error(), http.StatusTeapot)
		return
	}
	switch r.Header.Get("Test-Fail") {
	case "drop":
		// A reply that is no HTTP: reverse_proxy's 502. (A connection
		// closed with no reply at all is a request that Go's transport
		// sends again on a fresh connection, and the app runs twice.)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusTeapot)
			return
		}
		buf.WriteString("the app went down\r\n\r\n")
		buf.Flush()
		conn.Close()
	case "500":
		http.Error(w, "the app failed", http.StatusInternalServerError)
		return
	}
	a.namedApp.ServeHTTP(w, r)
}

func (a *errAfterApp) meanwhile(r *http.Request) error {
	var req *http.Request
	switch what := r.Header.Get("Test-Meanwhile"); what {
	case "":
		return nil
	case "expire":
		clock.Advance(3 * time.Hour) // past idle_timeout 2h: nothing tells of it
		return nil
	case "revoke":
		req, _ = http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/revoke", adminPort),
			strings.NewReader(`{"value": "alice"}`))
		req.Header.Set("Content-Type", "application/json")
	default:
		req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/tab", a.port.Load()), nil)
		req.Header.Set("Cookie", r.Header.Get("Test-Meanwhile-Cookie"))
		req.Header.Set("Test-First-Header", what)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the change meanwhile failed: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("the change meanwhile answered %d", res.StatusCode)
	}
	return nil
}

// errAfterErrors is the site's error route: it renders the error page
// with the app ($SECOND), as a site whose pages show the user's name in
// their menu does, and shows the session's placeholders in a header.
const errAfterErrors = `
	handle_errors {
		header Test-Placeholder "user={http.session.user} hash={http.session_hash}"
		reverse_proxy $SECOND
	}`

// errAfterConfigs are the ways a request that reached the app ends in an
// error that the site's error routes answer, each with the header that
// makes the app fail so.
var errAfterConfigs = []struct {
	name, fail, sites string
}{
	{"the app went down (reverse_proxy's 502)", "drop", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}` + errAfterErrors + `
	reverse_proxy $FIRST
}`},
	{"reverse_proxy's handle_response ends in error", "500", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}` + errAfterErrors + `
	reverse_proxy $FIRST {
		@failed status 500
		handle_response @failed {
			error "the app failed" 502
		}
	}
}`},
	{"intercept's handle_response ends in error", "500", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	handle_errors {
		# intercept leaves the app's header (Content-Length,
		# Content-Type) on the response when its route errs, and
		# reverse_proxy here adds its own: two lengths break the
		# response. Caddy's, with or without a session.
		header -Content-Length
		header Test-Placeholder "user={http.session.user} hash={http.session_hash}"
		reverse_proxy $SECOND
	}
	intercept {
		@failed status 500
		handle_response @failed {
			error "the app failed" 503
		}
	}
	reverse_proxy $FIRST
}`},
	{"a session in a handle beneath the site's", "drop", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}` + errAfterErrors + `
	handle /poll {
		session {
			$STORE
			$INNER
		}
		reverse_proxy $FIRST
	}
	reverse_proxy $FIRST
}`},
	{"a session inside handle_errors", "drop", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	handle_errors {
		session {
			$STORE
			$INNER
		}
		header Test-Placeholder "user={http.session.user} hash={http.session_hash}"
		reverse_proxy $SECOND
	}
	reverse_proxy $FIRST
}`},
}

// TestErrorAfterSessionEndedGetsNoSession: a request whose session ended
// while the app worked on it (it expired, an admin revoked the user, the user logged
// out on another tab, another user logged in there), and whose app then
// failed to answer (it went down, or answered a 500 that the site turns
// into an error), is answered by the site's error routes; here they
// render the error page with the app. They must get none of what the
// session handler forwarded (the session's keys, the signed token, the
// devices list, the CSRF token, the flash values), nor may the
// placeholders show the ended session, as for an answer withheld because
// its session ended: the page went, with the user's data, to the device
// that had been logged out. A session that stands (nothing happened, or
// the user's own renewal on another tab) still reaches the error route,
// as the README says.
func TestErrorAfterSessionEndedGetsNoSession(t *testing.T) {
	ends := []struct {
		name, meanwhile string
		stands          bool // the error route gets alice's session
	}{
		{"nothing meanwhile", "", true},
		{"a renewal of the same user on another tab", "X-Session-Renew: true", true},
		{"an admin revoked the user", "revoke", false},
		{"the session expired while the app worked", "expire", false},
		{"a logout on another tab", "X-Session-Destroy: true", false},
		{"a logout everywhere on another tab", "X-Session-Destroy-All: true", false},
		{"a login of another user on another tab", "X-Session-Set-User: bob", false},
	}
	options := "idle_timeout 2h\n\t\ttunnels 1h\n\t\tdevices /poll\n\t\t" +
		"sign {\n\t\t\tsecret " + signSecret + "\n\t\t}\n\t\tcsrf {\n\t\t\ttoken\n\t\t}"
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range errAfterConfigs {
			t.Run(c.name, func(t *testing.T) {
				first := &errAfterApp{namedApp: namedApp{"First"}}
				s := newTwiceSite(t, twiceConfig{c.name, c.sites}, store, options, first, namedApp{"Second"})
				first.port.Store(int64(s.port))
				for _, end := range ends {
					t.Run(end.name, func(t *testing.T) {
						v := s.visitor()
						expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice",
							"Test-First-Header", "X-Session-Set-Cart: apple", "Test-First-Header", "X-Session-Flash-Notice: welcome-alice"), http.StatusOK)
						if v.sid == "" {
							t.Fatal("the login set no cookie")
						}
						sid := v.sid
						r := v.do(http.MethodGet, "/poll", "Test-Fail", c.fail, "Test-Meanwhile", end.meanwhile,
							"Test-Meanwhile-Cookie", "sid="+sid, "Sec-Fetch-Mode", "navigate")
						if r.seen.URI == "" {
							// intercept left the app's text/plain on it
							_ = json.Unmarshal(r.body, &r.seen)
						}
						if r.seen.URI != "/poll" {
							t.Fatalf("the error route did not answer the failed request: %d %q", r.StatusCode, r.body)
						}
						expectNoCookie(t, r.Response, "the error page")
						placeholders := r.Header.Get("Test-Placeholder")
						if end.stands {
							if r.seen.Headers.Get("X-Session-User") != "alice" || r.seen.Headers.Get("X-Session-Cart") != "apple" ||
								!strings.Contains(placeholders, "user=alice") {
								t.Fatalf("the error route of a session that stands did not get it: %v, placeholders %q", r.session(), placeholders)
							}
							return
						}
						for name := range r.seen.Headers {
							if strings.HasPrefix(strings.ToLower(name), "x-session-") {
								t.Errorf("the error route of a request whose session ended got %s: %q", name, r.seen.Headers.Values(name))
							}
						}
						if strings.Contains(placeholders, "alice") || strings.Contains(placeholders, session.HashID(sid).Short()) {
							t.Errorf("the placeholders in the error route of a request whose session ended show it: %q", placeholders)
						}
					})
				}
			})
		}
	})
}
