package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestErrorRouteOfAnEndedSessionGetsNoForwardedCookie: with
// forward_cookie the app gets the session cookie as the browser sent it.
// A request whose session ended while the app worked on it, whose answer
// is withheld or whose app failed, reaches the site's error routes
// without it, as without the session's headers
// (TestErrorAfterSessionEndedGetsNoSession): after another user's login
// on another tab the old ID still leads to the new session for the
// forward record's grace period, and an error page rendered with it is
// rendered for that user. A session that stands keeps its cookie there.
func TestErrorRouteOfAnEndedSessionGetsNoForwardedCookie(t *testing.T) {
	ends := []struct {
		name, meanwhile string
		stands          bool
	}{
		{"nothing meanwhile", "", true},
		{"a logout on another tab", "X-Session-Destroy: true", false},
		{"a login of another user on another tab", "X-Session-Set-User: bob", false},
	}
	fails := []struct{ name, fail string }{
		{"the answer is withheld", ""},
		{"the app went down", "drop"},
	}
	options := "idle_timeout 2h\n\t\ttunnels 1h\n\t\tforward_cookie"
	eachStore(t, func(t *testing.T, store string) {
		first := &errAfterApp{namedApp: namedApp{"First"}}
		s := newTwiceSite(t, twiceConfig{errAfterConfigs[0].name, errAfterConfigs[0].sites}, store, options, first, namedApp{"Second"})
		first.port.Store(int64(s.port))
		for _, fail := range fails {
			for _, end := range ends {
				if end.stands && fail.fail == "" {
					continue // an answer delivered: no error route
				}
				t.Run(fail.name+"/"+end.name, func(t *testing.T) {
					v := s.visitor()
					expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
					sid := v.sid
					if sid == "" {
						t.Fatal("the login set no cookie")
					}
					r := v.do(http.MethodGet, "/poll", "Test-Fail", fail.fail, "Test-Meanwhile", end.meanwhile,
						"Test-Meanwhile-Cookie", "sid="+sid)
					if r.seen.URI != "/poll" {
						t.Fatalf("the error route did not answer the request: %d %q", r.StatusCode, r.body)
					}
					got := strings.Contains(strings.Join(r.seen.Headers.Values("Cookie"), "; "), "sid="+sid)
					if got != end.stands {
						t.Fatalf("the error route got the session's cookie: %v, want %v", got, end.stands)
					}
				})
			}
		}
	})
}
