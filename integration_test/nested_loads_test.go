package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// A nested session handler of the site's store, cookie and realm adopts
// the load of the site's handler: that one has taken the cookie off the
// request. A session matcher or handler of another cookie, realm or store
// that loads in between must not take that load's place, or the nested
// handler finds no load to adopt and no cookie to read, serves the user as
// anonymous, and a write there starts a session that replaces the user's
// cookie.
func TestNestedHandlerAdoptsPastOtherLoads(t *testing.T) {
	tests := []struct {
		name    string
		between string // what loads between the site's handler and the nested one
	}{
		{name: "a handler of another cookie", between: `session {
					store bolt {db:other}
					cookie osid
				}`},
		{name: "a handler of another realm", between: `session {
					store bolt {db:shared}
					realm elsewhere
				}`},
		{name: "a matcher of another site's cookie", between: `@other session user {
					cookie osid
				}
				header @other X-Other-User yes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMultiSite(t, "s", "o")
			m.load([2]string{"s", `session {
				store bolt {db:shared}
			}
			route /admin/* {
				` + tc.between + `
				session {
					store bolt {db:shared}
					idle_timeout 1h
				}
				reverse_proxy {up}
			}
			reverse_proxy {up}`}, [2]string{"o", `session {
				store bolt {db:other}
				cookie osid
			}
			reverse_proxy {up}`})
			cookie := m.login("s", "sid", "X-Session-Set-User: admin")
			res, body := m.get("s", "/admin/", cookie, "X-Session-Set-Seen: admin")
			if !strings.Contains(body, `"X-Session-User":["admin"]`) {
				t.Errorf("the nested handler served the session as anonymous: %s", body)
			}
			if c := res.Cookies(); len(c) != 0 {
				t.Errorf("a write under the nested handler replaced the user's cookie: %v", c)
			}
			if _, body := m.get("s", "/", cookie); !strings.Contains(body, `"X-Session-Seen":["admin"]`) {
				t.Errorf("the nested handler's write did not land in the user's session: %s", body)
			}
		})
	}
}

// Session handlers of one site with different header_prefix each apply
// only their own namespace's commands, and every namespace of the site's
// session handlers is stripped in both directions: the app behind a
// nested handler cannot reach past its `writable` by speaking the site
// handler's namespace, a client cannot send a header of the nested
// handler's namespace to a part of the site that handler does not cover
// (the same app may serve both), and no namespace header of either
// handler reaches the client. Headers a handler forwards reach the app
// behind a nested handler of another namespace.
func TestNestedHandlersKeepToTheirNamespaces(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `session {
				store bolt {db:shared}
			}
			header /admin/logout X-Session-Destroy true
			handle /admin/* {
				session {
					store bolt {db:shared}
					header_prefix X-Admin-
					writable note
				}
				reverse_proxy {up}
			}
			reverse_proxy {up}`})
	tests := []struct {
		name, path string
		request    []string // client headers, "Name: value"
		commands   []string // the app's response headers
		// wantUpstream and notUpstream are what the app's view of the
		// request holds, and must not.
		wantUpstream, notUpstream []string
		// ended: the session ends, by a command of the site's own
		// `header` directive, which sits outside both handlers.
		ended bool
	}{
		{name: "the nested app writes in the site handler's namespace", path: "/admin/",
			commands:     []string{"X-Session-Set-Role: admin"},
			wantUpstream: []string{`"X-Session-User":["alice"]`, `"X-Admin-User":["alice"]`}},
		{name: "the nested app writes in the site handler's namespace, spelled otherwise", path: "/admin/",
			commands: []string{"X-Session_Set_Role: admin"}},
		{name: "the nested app ends the session in the site handler's namespace", path: "/admin/",
			commands: []string{"X-Session-Destroy: true"}},
		{name: "the site's header directive commands the site handler under the nested one", path: "/admin/logout", ended: true},
		{name: "the app outside the nested handler writes in its namespace", path: "/",
			commands: []string{"X-Admin-Set-Role: admin", "X-Admin-Meta-Foo: bar"}},
		{name: "a client sends the nested handler's namespace outside it", path: "/",
			request:     []string{"X-Admin-User: root", "X_Admin_Role: admin", "x-admin-meta-remembered: true"},
			notUpstream: []string{"X-Admin-", "X_Admin_", "x-admin-"}},
		{name: "a client sends the site handler's namespace to the nested app", path: "/admin/",
			request:      []string{"X-Session-Role: admin", "X-Session-User: root"},
			wantUpstream: []string{`"X-Session-User":["alice"]`},
			notUpstream:  []string{"root", `"X-Session-Role"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cookie := m.login("s", "sid", "X-Session-Set-User: alice")
			h := http.Header{"Cookie": {cookie}}
			for _, line := range tc.request {
				name, value, _ := strings.Cut(line, ":")
				h[name] = append(h[name], strings.TrimSpace(value))
			}
			res, body := m.send("s", http.MethodGet, tc.path, h, tc.commands...)
			for name := range res.Header {
				if n := strings.ToLower(strings.ReplaceAll(name, "_", "-")); strings.HasPrefix(n, "x-admin-") {
					t.Errorf("namespace header %q reached the client", name)
				}
			}
			for _, want := range tc.wantUpstream {
				if !strings.Contains(body, want) {
					t.Errorf("the app did not get %s: %s", want, body)
				}
			}
			for _, not := range tc.notUpstream {
				if strings.Contains(body, not) {
					t.Errorf("the app got %s: %s", not, body)
				}
			}
			_, body = m.get("s", "/admin/", cookie)
			if tc.ended {
				if strings.Contains(body, "alice") {
					t.Errorf("the site's header directive did not end the session: %s", body)
				}
				return
			}
			if strings.Contains(body, "Role") || !strings.Contains(body, "alice") {
				t.Errorf("a command of another handler's namespace was applied: %s", body)
			}
		})
	}
}
