package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// A site may guard one part of itself more strictly with a session
// handler of its own, inside the site's top-level one on the same store,
// cookie and realm. The inner handler cannot load the session again (the
// outer one took the cookie off the request), so it adopts the outer's
// load; it must still make its own checks of that load, or a request the
// outer part serves reaches the stricter part as the session's user:
// bound to the User-Agent (SECURITY.md: a request from another client "is
// served as anonymous"), or past a shorter idle_timeout.
func TestNestedHandlerMakesItsOwnChecks(t *testing.T) {
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	tests := []struct {
		name  string
		inner string // the inner handler's settings
		// login is where the session is created: by the handler that
		// binds it, or by the outer one, whose timeouts set its deadlines.
		login string
		// before runs between the login and the last request, which is
		// sent with userAgent.
		before    func(t *testing.T)
		userAgent string
	}{
		{name: "bound to the User-Agent", inner: "bind user_agent", login: "/admin/", userAgent: "curl/8.5.0"},
		{name: "a shorter idle timeout", inner: "idle_timeout 10m", login: "/", userAgent: firefox, before: func(t *testing.T) {
			clock.Advance(11 * time.Minute)
			t.Cleanup(func() { clock.Advance(-11 * time.Minute) })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMultiSite(t, "s")
			m.load([2]string{"s", `session {
				store bolt {db:shared}
			}
			handle /admin/* {
				session {
					store bolt {db:shared}
					` + tc.inner + `
				}
				reverse_proxy {up}
			}
			reverse_proxy {up}`})
			get := func(path, userAgent, cookie string, commands ...string) (*http.Response, string) {
				t.Helper()
				h := http.Header{"User-Agent": {userAgent}}
				if cookie != "" {
					h.Set("Cookie", cookie)
				}
				return m.send("s", http.MethodGet, path, h, commands...)
			}
			res, _ := get(tc.login, firefox, "", "X-Session-Set-User: admin")
			var cookie string
			for _, c := range res.Cookies() {
				if c.Name == "sid" {
					cookie = "sid=" + c.Value
				}
			}
			if cookie == "" {
				t.Fatal("the login issued no cookie")
			}
			if _, body := get("/admin/", firefox, cookie); !strings.Contains(body, `"X-Session-User":["admin"]`) {
				t.Fatalf("the admin's own browser does not get the session: %s", body)
			}
			if tc.before != nil {
				tc.before(t)
			}
			if _, body := get("/admin/", tc.userAgent, cookie); strings.Contains(body, "X-Session-User") {
				t.Errorf("the stricter inner handler served the session: %s", body)
			}
		})
	}
}
