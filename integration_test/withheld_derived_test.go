package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// endingApp is namedApp{"First"} that, on a request that says Test-End,
// ends its session from elsewhere before it answers: the admin API
// revokes alice, or another request (with the cookie of Test-Cookie, if
// any) goes through Caddy with the orders of Test-End-Header. The end is done and
// committed when the app answers: the request is in flight across it.
type endingApp struct {
	site atomic.Pointer[site]
}

func (a *endingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("Test-End") {
	case "":
	case "revoke":
		res, err := http.Post(fmt.Sprintf("http://localhost:%d/session/revoke", adminPort), "application/json",
			strings.NewReader(`{"value": "alice"}`))
		if err != nil || res.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("the revocation meanwhile failed: %v %v", res, err), http.StatusTeapot)
			return
		}
		res.Body.Close()
	default: // another tab of the same browser
		req, _ := http.NewRequest(http.MethodGet, a.site.Load().url("/account/devices"), nil)
		if c := r.Header.Get("Test-Cookie"); c != "" {
			req.Header.Set("Cookie", c)
		}
		for _, o := range r.Header.Values("Test-End-Header") {
			req.Header.Add("Test-First-Header", o)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("the other tab's request failed: %v %v", res, err), http.StatusTeapot)
			return
		}
		res.Body.Close()
	}
	namedApp{"First"}.ServeHTTP(w, r)
}

// derivedWithheld is a site whose error routes render their pages with
// the app ($SECOND), showing the session's placeholders as a template
// of the page would read them, and marking a request that a session
// matcher finds alice's.
var derivedWithheld = twiceConfig{"handle_errors proxies to the app", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	handle_errors {
		@placed session user alice {
			cookie sid
		}
		request_header @placed Test-Matched-Placed alice
		` + derivedMatched + `
		reverse_proxy $SECOND {
			` + derivedShown + `
		}
	}
	reverse_proxy $FIRST
}`}

// TestWithheldAnswerHandsOutNothingDerived: an answer withheld because
// its session ended while the app worked on it is a 403 that the site's
// error routes render. They get none of the session: not its keys, hash
// or signed token (TestWithheldErrorRouteGetsNoSession), and not its CSRF
// token either, in the header or in {http.session_meta.csrf_token}, which
// a template of the error page puts into its forms; nor may a session
// matcher of the error routes (placed, or CEL's session()) find it, or
// they serve the user's error pages (an admin's) to the device that was
// logged out. Each way the session
// can end while the request is in flight: an admin's revocation, a logout
// in another tab, a logout everywhere (there or on the user's other
// device), a login as another user, the user's revoke of this device from
// another, and the eviction of max_sessions_per_identity by a login on a
// new device.
func TestWithheldAnswerHandsOutNothingDerived(t *testing.T) {
	rows := []struct {
		name    string
		options string
		end     string   // Test-End: revoke, or tab for another request
		device  string   // of the other request: "" the same browser, "new" one without a session, "other" alice's other device
		other   []string // the other request's commands; $HASH: the short hash of the session in flight
	}{
		{"an admin's revocation", "", "revoke", "", nil},
		{"a logout in another tab", "", "tab", "", []string{"X-Session-Destroy: true"}},
		{"a logout everywhere in another tab", "", "tab", "", []string{"X-Session-Destroy-All: true"}},
		{"a login as another user in another tab", "", "tab", "", []string{"X-Session-Set-User: bob"}},
		{"a logout everywhere on the user's other device", "", "tab", "other", []string{"X-Session-Destroy-All: true"}},
		{"a revoke of this device from the user's other device", "devices /account/devices", "tab", "other", []string{"X-Session-Revoke: $HASH"}},
		{"a login on another device past max_sessions_per_identity", "max_sessions_per_identity 1", "tab", "new", []string{"X-Session-Set-User: alice"}},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				app := new(endingApp)
				s := newTwiceSite(t, derivedWithheld, store, "idle_timeout 2h\n\t\ttunnels 1h\n\t\tcsrf {\n\t\t\ttoken\n\t\t}\n\t\t"+row.options, app, namedApp{"Second"})
				app.site.Store(s)
				v := s.visitor()
				expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
				if v.sid == "" {
					t.Fatal("the login set no cookie")
				}
				sid := v.sid
				token := v.do(http.MethodGet, "/page").seen.Headers.Get("X-Session-Meta-Csrf-Token")
				if token == "" {
					t.Fatal("the app got no csrf token")
				}
				hash := session.HashID(sid).Short()

				cookie := "sid=" + sid
				switch row.device {
				case "new":
					cookie = ""
				case "other":
					other := s.visitor()
					other.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice")
					if other.sid == "" || other.sid == sid {
						t.Fatal("the other device's login set no cookie of its own")
					}
					cookie = "sid=" + other.sid
				}
				headers := []string{"Test-End", row.end, "Test-Cookie", cookie}
				for _, o := range row.other {
					headers = append(headers, "Test-End-Header", strings.ReplaceAll(o, "$HASH", hash))
				}
				r := v.do(http.MethodGet, "/poll", headers...)
				// The error route's app answers the withheld request (the
				// app's own answer has no Test-Placeholder).
				if r.seen.URI != "/poll" || len(r.seen.Headers.Values("Test-Placeholder")) == 0 {
					t.Fatalf("the error route did not answer the withheld request: %d %q", r.StatusCode, r.body)
				}
				expectNothingDerived(t, r, "the error route of a withheld answer", hash, token)
				expectNoCookie(t, r.Response, "the error page of a withheld answer")
			})
		}
	})
}

// expectNothingDerived fails the test if the error route that answered r
// got anything of the session of short hash and CSRF token: a header of
// the namespace, a placeholder that shows the session or its token, or a
// session matcher's match (derivedWithheld's routes mark them).
func expectNothingDerived(t *testing.T, r *response, what, hash, token string) {
	t.Helper()
	for name, values := range r.seen.Headers {
		if strings.HasPrefix(strings.ToLower(name), "x-session-") {
			t.Errorf("%s got %s: %q", what, name, values)
		}
	}
	shown := r.seen.Headers.Get("Test-Placeholder")
	if strings.Contains(shown, "alice") || strings.Contains(shown, hash) || strings.Contains(shown, token) {
		t.Errorf("the placeholders in %s show the session: %q (its short hash %s, its csrf token %s)", what, shown, hash, token)
	}
	if !strings.Contains(shown, "csrf=") || strings.Contains(shown, "{http.session_meta.csrf_token}") {
		t.Errorf("the csrf token placeholder in %s is %q, want it empty, as without a session", what, shown)
	}
	for _, name := range []string{"Test-Matched-Placed", "Test-Matched"} {
		if got := r.seen.Headers.Get(name); got != "" {
			t.Errorf("a session matcher in %s matched the session (%s)", what, name)
		}
	}
}

// TestCSRFRefusalReachesTheErrorRoutesWithoutTheSession: README: "a
// request the site's csrf refused reaches it without the user's
// session". The check puts the session's CSRF token on the request (the
// header and {http.session_meta.csrf_token}) before it judges, and the
// site's own error routes got it with the refusal, and their session
// matchers matched the user: an error page rendered the token of the
// session a forged request rode on.
func TestCSRFRefusalReachesTheErrorRoutesWithoutTheSession(t *testing.T) {
	eachStore(t, func(t *testing.T, store string) {
		s := newTwiceSite(t, derivedWithheld, store, "csrf {\n\t\t\ttoken\n\t\t}", namedApp{"First"}, namedApp{"Second"})
		v := s.visitor()
		expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
		token := v.do(http.MethodGet, "/page").seen.Headers.Get("X-Session-Meta-Csrf-Token")
		if v.sid == "" || token == "" {
			t.Fatalf("the login left no session (%t) or the app got no csrf token (%t)", v.sid == "", token == "")
		}
		r := v.do(http.MethodPost, "/transfer", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if r.seen.URI != "/transfer" || len(r.seen.Headers.Values("Test-Placeholder")) == 0 {
			t.Fatalf("the error route did not answer the refused request: %d %q", r.StatusCode, r.body)
		}
		expectNothingDerived(t, r, "the error route of a refused cross-site POST", session.HashID(v.sid).Short(), token)
	})
}
