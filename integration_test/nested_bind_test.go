package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
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
	for _, tc := range stricterInner {
		t.Run(tc.name, func(t *testing.T) {
			m := nestedSite(t, tc.inner)
			get := func(path, userAgent, cookie string, commands ...string) (*http.Response, string) {
				t.Helper()
				h := http.Header{"User-Agent": {userAgent}}
				if cookie != "" {
					h.Set("Cookie", cookie)
				}
				return m.send("s", http.MethodGet, path, h, commands...)
			}
			cookie := loginAs(t, m, tc.login, firefox)
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

// A nested handler of the same store, cookie and realm that derives more
// from the session's ID than the site's handler (the CSRF token of
// `csrf { token }`, the key of `seal_values`) cannot take over the outer
// one's load as it is, and cannot load the session again either: the
// outer handler took the cookie off the request. The outer handler must
// therefore derive what its nested peers need, or the inner part of the
// site serves the session's user as anonymous, and a write there starts a
// new session that replaces the user's cookie.
func TestNestedHandlerGetsWhatItDerivesFromTheID(t *testing.T) {
	tests := []struct {
		name, inner string
		login       string // where the session starts: outside the inner handler, or in it
		check       func(t *testing.T, m *multiSite, cookie, body string)
	}{
		{name: "csrf token", inner: "csrf {\n\t\t\t\t\ttoken\n\t\t\t\t}", login: "/",
			check: func(t *testing.T, m *multiSite, cookie, body string) {
				_, id, _ := strings.Cut(cookie, "=")
				token := session.CSRFToken(id)
				if !strings.Contains(body, `"X-Session-Meta-Csrf-Token":["`+token+`"]`) {
					t.Errorf("the app behind the inner handler did not get the session's CSRF token: %s", body)
				}
				h := http.Header{"Cookie": {cookie}, "X-Csrf-Token": {token}}
				if res, body := m.send("s", http.MethodPost, "/admin/", h); res.StatusCode != http.StatusOK || !strings.Contains(body, "admin") {
					t.Errorf("a POST with the session's token: %d %s", res.StatusCode, body)
				}
				h.Del("X-Csrf-Token")
				if res, _ := m.send("s", http.MethodPost, "/admin/", h); res.StatusCode != http.StatusForbidden {
					t.Errorf("a POST of the session without its token: %d, want 403", res.StatusCode)
				}
			}},
		{name: "seal_values, a session the outer handler started", inner: "seal_values", login: "/"},
		{name: "seal_values, a session the inner handler started", inner: "seal_values", login: "/admin/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := nestedSite(t, tc.inner)
			cookie := m.loginAt("s", tc.login, "", "sid", "X-Session-Set-User: admin")
			for _, path := range []string{"/admin/", "/"} {
				res, body := m.get("s", path, cookie, "X-Session-Set-Seen: "+path)
				if !strings.Contains(body, `"X-Session-User":["admin"]`) {
					t.Fatalf("%s served the session as anonymous: %s", path, body)
				}
				if c := res.Cookies(); len(c) != 0 {
					t.Fatalf("a write on %s of the session replaced its cookie: %v", path, c)
				}
			}
			res, body := m.get("s", "/admin/", cookie)
			if !strings.Contains(body, `"X-Session-Seen":["/"]`) {
				t.Fatalf("the writes of both handlers did not land in the one session: %d %s", res.StatusCode, body)
			}
			if tc.check != nil {
				tc.check(t, m, cookie, body)
			}
		})
	}
}

// TestNestedHandlerServingAnonymousKeepsTheFlash: the site's handler takes
// the session's flash values for a navigation before the inner, stricter
// handler decides it serves the request as anonymous (another client, or
// past its shorter idle_timeout). That request's app gets no flash value,
// and so must not use it up: the next navigation of the session where it
// is served, outside the stricter part, gets it, once ("Flash values":
// the app gets it once, on the next page of the session).
func TestNestedHandlerServingAnonymousKeepsTheFlash(t *testing.T) {
	for _, tc := range stricterInner {
		t.Run(tc.name, func(t *testing.T) {
			m := nestedSite(t, tc.inner)
			navigate := func(path, userAgent, cookie string, commands ...string) string {
				t.Helper()
				h := http.Header{"User-Agent": {userAgent}, "Sec-Fetch-Mode": {"navigate"}, "Cookie": {cookie}}
				res, body := m.send("s", http.MethodGet, path, h, commands...)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", path, res.StatusCode, body)
				}
				return body
			}
			cookie := loginAs(t, m, tc.login, firefox)
			navigate("/save", firefox, cookie, "X-Session-Flash-Notice: Saved")
			if tc.before != nil {
				tc.before(t)
			}
			if body := navigate("/admin/", tc.userAgent, cookie); strings.Contains(body, "X-Session-User") || strings.Contains(body, "Saved") {
				t.Fatalf("the stricter inner handler served the session, or its flash value: %s", body)
			}
			if body := navigate("/", firefox, cookie); !strings.Contains(body, `"X-Session-Flash-Notice":["Saved"]`) {
				t.Fatalf("the next navigation the session is served on did not get its flash value, used up by a request served as anonymous: %s", body)
			}
			if body := navigate("/", firefox, cookie); strings.Contains(body, "Saved") {
				t.Fatalf("the flash value was handed twice: %s", body)
			}
		})
	}
}

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// stricterInner are the ways a nested handler is stricter than the
// site's: each makes a request the site serves as the user's anonymous
// to the inner handler.
var stricterInner = []struct {
	name  string
	inner string // the inner handler's settings
	// login is where the session is created: by the handler that binds
	// it, or by the outer one, whose timeouts set its deadlines.
	login string
	// before runs between the login and the request sent with userAgent,
	// which the inner handler must serve as anonymous.
	before    func(t *testing.T)
	userAgent string
}{
	{name: "bound to the User-Agent", inner: "bind user_agent", login: "/admin/", userAgent: "curl/8.5.0"},
	{name: "a shorter idle timeout", inner: "idle_timeout 10m", login: "/", userAgent: firefox, before: func(t *testing.T) {
		clock.Advance(11 * time.Minute)
		t.Cleanup(func() { clock.Advance(-11 * time.Minute) })
	}},
}

// nestedSite is a site whose /admin/ part has a session handler of its
// own, with inner's settings, inside the site's on the same store, cookie
// and realm.
func nestedSite(t *testing.T, inner string) *multiSite {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `session {
		store bolt {db:shared}
	}
	handle /admin/* {
		session {
			store bolt {db:shared}
			` + inner + `
		}
		reverse_proxy {up}
	}
	reverse_proxy {up}`})
	return m
}

// loginAs logs the user admin in at path from a browser of userAgent and
// returns the session's cookie.
func loginAs(t *testing.T, m *multiSite, path, userAgent string) string {
	t.Helper()
	res, _ := m.send("s", http.MethodGet, path, http.Header{"User-Agent": {userAgent}}, "X-Session-Set-User: admin")
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			return "sid=" + c.Value
		}
	}
	t.Fatal("the login issued no cookie")
	return ""
}
