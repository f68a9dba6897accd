package integration_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// twoAppsUnderOneHost is a site of two apps, each with a session of its
// own, under one host: browsers send both cookies to both.
const twoAppsUnderOneHost = `
	handle /shop/* {
		session {
			store bolt {db:shop}
			cookie shop_sid
		}
		reverse_proxy {up}
	}
	handle /forum/* {
		session {
			store bolt {db:forum}
			cookie forum_sid
		}
		reverse_proxy {up}
	}`

// nestedSession is a site whose session has another nested in a route,
// with its own cookie and header_prefix and the options given.
func nestedSession(options string) string {
	return `
	session {
		store bolt {db:outer}
		cookie outer_sid
	}
	route /inner/* {
		session {
			store bolt {db:inner}
			cookie inner_sid
			header_prefix X-Inner-
			` + options + `
		}
	}
	reverse_proxy {up}`
}

// A browser sends a host's cookies to every path and port of it, and a
// cookie that names a domain to every host under it: the session cookie
// of one app reaches the other apps of the host. No app may get the raw
// ID of another app's session (it could act as the user there), and each
// session handler, and a matcher through another site's cookie, still
// reads its own.
func TestNoAppGetsAnotherSessionsCookie(t *testing.T) {
	type want struct {
		site, path string
		values     map[string]string // forwarded session values, by header
		cookie     string            // the one session cookie the app may get (forward_cookie), by name
		body       string            // the answer's body, when the app does not answer
	}
	type login struct {
		site, path, cookie, command string
	}
	cases := []struct {
		name   string
		sites  [][2]string
		logins []login
		wants  []want
	}{
		{
			name:   "two apps under one host",
			sites:  [][2]string{{"a", twoAppsUnderOneHost}},
			logins: []login{{"a", "/shop/login", "shop_sid", "X-Session-Set-User: alice"}, {"a", "/forum/login", "forum_sid", "X-Session-Set-User: bob"}},
			wants: []want{
				{site: "a", path: "/forum/x", values: map[string]string{"X-Session-User": "bob"}},
				{site: "a", path: "/shop/x", values: map[string]string{"X-Session-User": "alice"}},
			},
		},
		{
			name: "two sites on two ports of one host",
			sites: [][2]string{
				{"a", "session {\n\t\tstore bolt {db:a}\n\t\tcookie asid\n\t}\n\treverse_proxy {up}"},
				{"b", "session {\n\t\tstore bolt {db:b}\n\t\tcookie bsid\n\t}\n\treverse_proxy {up}"},
			},
			logins: []login{{"a", "/", "asid", "X-Session-Set-User: alice"}, {"b", "/", "bsid", "X-Session-Set-User: bob"}},
			wants: []want{
				{site: "b", path: "/", values: map[string]string{"X-Session-User": "bob"}},
				{site: "a", path: "/", values: map[string]string{"X-Session-User": "alice"}},
			},
		},
		{
			name: "a handler with its own matcher, on the paths it does not match",
			sites: [][2]string{
				{"a", "session /app/* {\n\t\tstore bolt {db:a}\n\t\tcookie asid\n\t}\n\treverse_proxy {up}"},
				{"b", "session {\n\t\tstore bolt {db:b}\n\t\tcookie bsid\n\t}\n\treverse_proxy {up}"},
			},
			logins: []login{{"a", "/app/login", "asid", "X-Session-Set-User: alice"}, {"b", "/", "bsid", "X-Session-Set-User: bob"}},
			wants: []want{
				{site: "a", path: "/elsewhere", values: map[string]string{"X-Session-User": ""}},
				{site: "a", path: "/app/x", values: map[string]string{"X-Session-User": "alice"}},
			},
		},
		{
			name:   "a handler nested under another reads its own cookie",
			sites:  [][2]string{{"a", nestedSession("")}},
			logins: []login{{"a", "/login", "outer_sid", "X-Session-Set-User: alice"}, {"a", "/inner/login", "inner_sid", "X-Inner-Set-User: carol"}},
			wants: []want{
				{site: "a", path: "/inner/x", values: map[string]string{"X-Session-User": "alice", "X-Inner-User": "carol"}},
				{site: "a", path: "/x", values: map[string]string{"X-Session-User": "alice"}},
			},
		},
		{
			name:   "a nested handler that forwards its cookie keeps it",
			sites:  [][2]string{{"a", nestedSession("forward_cookie")}},
			logins: []login{{"a", "/login", "outer_sid", "X-Session-Set-User: alice"}, {"a", "/inner/login", "inner_sid", "X-Inner-Set-User: carol"}},
			wants: []want{
				{site: "a", path: "/inner/x", values: map[string]string{"X-Session-User": "alice", "X-Inner-User": "carol"}, cookie: "inner_sid"},
			},
		},
		{
			name: "a matcher through another site's cookie after the site's handler",
			sites: [][2]string{
				{"a", "session {\n\t\tstore bolt {db:a}\n\t\tcookie asid\n\t}\n\treverse_proxy {up}"},
				{"e", `
	route {
		session {
			store bolt {db:e}
			cookie esid
		}
		@alice session user alice {
			cookie asid
		}
		respond @alice "alice of a" 200
		reverse_proxy {up}
	}`},
			},
			logins: []login{{"e", "/", "esid", "X-Session-Set-User: erin"}, {"a", "/", "asid", "X-Session-Set-User: alice"}},
			wants: []want{
				{site: "e", path: "/", body: "alice of a"},
				{site: "a", path: "/", values: map[string]string{"X-Session-User": "alice"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			names := []string{}
			for _, s := range tc.sites {
				names = append(names, s[0])
			}
			m := newMultiSite(t, names...)
			m.load(tc.sites...)
			var jar []string
			ids := map[string]string{} // cookie name: raw ID
			for _, l := range tc.logins {
				c := m.loginAt(l.site, l.path, strings.Join(jar, "; "), l.cookie, l.command)
				jar = append(jar, c)
				ids[l.cookie] = strings.TrimPrefix(c, l.cookie+"=")
			}
			cookies := strings.Join(jar, "; ") + "; theme=dark"
			for _, w := range tc.wants {
				res, body := m.get(w.site, w.path, cookies)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s%s: status %d: %s", w.site, w.path, res.StatusCode, body)
				}
				if w.body != "" {
					if body != w.body {
						t.Errorf("%s%s: got %q, want %q", w.site, w.path, body, w.body)
					}
					continue
				}
				var got seen
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("%s%s: %v: %s", w.site, w.path, err, body)
				}
				sent := strings.Join(got.Headers.Values("Cookie"), "; ")
				// Failures name the cookies the app got, never their values.
				for name, id := range ids {
					if strings.Contains(sent, id) && name != w.cookie {
						t.Errorf("%s%s: the app got the raw ID of the %s session: cookies %v", w.site, w.path, name, cookieNames(sent))
					}
				}
				if w.cookie != "" && !strings.Contains(sent, w.cookie+"="+ids[w.cookie]) {
					t.Errorf("%s%s: forward_cookie's %s did not reach the app: cookies %v", w.site, w.path, w.cookie, cookieNames(sent))
				}
				if !strings.Contains(sent, "theme=dark") {
					t.Errorf("%s%s: the app's own cookie is gone: cookies %v", w.site, w.path, cookieNames(sent))
				}
				for name, value := range w.values {
					if v := got.Headers.Get(name); v != value {
						t.Errorf("%s%s: %s = %q, want %q", w.site, w.path, name, v, value)
					}
				}
			}
		})
	}
}

// A session handler alone sets its cookie: an app's Set-Cookie of it, or
// of another handler's cookie that browsers send to its hosts, would plant
// an ID of the app's choosing in the browser (the forum's app logging the
// user into the shop as the attacker) or remove the user's. The app's
// other cookies, and every line a session handler writes, go through.
func TestNoAppSetsASessionCookie(t *testing.T) {
	const planted = "planted0planted0planted0planted0planted0pla"
	type step struct {
		site, path string
		commands   []string
		cookies    []string // the session cookies the client must get, by name
	}
	cases := []struct {
		name  string
		sites [][2]string
		steps []step
	}{
		{
			name:  "its own cookie, on a read and on a login",
			sites: [][2]string{{"a", "session {\n\t\tstore bolt {db:a}\n\t}\n\treverse_proxy {up}"}},
			steps: []step{
				{site: "a", path: "/", commands: []string{"Set-Cookie: sid=" + planted + "; Path=/"}},
				{site: "a", path: "/", commands: []string{"Set-Cookie: sid=" + planted + "; Path=/", "X-Session-Set-User: alice"}, cookies: []string{"sid"}},
				{site: "a", path: "/", commands: []string{"Set-Cookie:  sid =; Max-Age=0"}},
			},
		},
		{
			name:  "another app's under one host",
			sites: [][2]string{{"a", twoAppsUnderOneHost}},
			steps: []step{
				{site: "a", path: "/forum/x", commands: []string{"Set-Cookie: shop_sid=" + planted + "; Path=/"}},
				{site: "a", path: "/forum/login", commands: []string{"Set-Cookie: shop_sid=" + planted + "; Path=/", "X-Session-Set-User: bob"}, cookies: []string{"forum_sid"}},
			},
		},
		{
			name:  "a nested handler's own line passes the outer one",
			sites: [][2]string{{"a", nestedSession("")}},
			steps: []step{
				{site: "a", path: "/inner/login", commands: []string{"X-Inner-Set-User: carol", "Set-Cookie: outer_sid=" + planted}, cookies: []string{"inner_sid"}},
				{site: "a", path: "/inner/again", commands: []string{"X-Inner-Set-User: carol", "Set-Cookie: inner_sid=" + planted}, cookies: []string{"inner_sid"}},
				{site: "a", path: "/login", commands: []string{"X-Session-Set-User: alice", "Set-Cookie: inner_sid=" + planted}, cookies: []string{"outer_sid"}},
			},
		},
		{
			name: "on the paths a handler's matcher does not match",
			sites: [][2]string{
				{"a", "session /app/* {\n\t\tstore bolt {db:a}\n\t}\n\treverse_proxy {up}"},
			},
			steps: []step{
				{site: "a", path: "/elsewhere", commands: []string{"Set-Cookie: sid=" + planted + "; Path=/"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for _, s := range tc.sites {
				names = append(names, s[0])
			}
			m := newMultiSite(t, names...)
			m.load(tc.sites...)
			for _, st := range tc.steps {
				res, body := m.get(st.site, st.path, "", append(st.commands, "Set-Cookie: theme=dark; Path=/")...)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s%s: status %d: %s", st.site, st.path, res.StatusCode, body)
				}
				var got []string
				theme := false
				for _, c := range res.Cookies() {
					if c.Name == "theme" {
						theme = true
						continue
					}
					if c.Value == planted || c.Value == "" {
						t.Errorf("%s%s: the app's %s cookie reached the client: %q", st.site, st.path, c.Name, setCookieNames(res))
						continue
					}
					got = append(got, c.Name)
				}
				if !theme {
					t.Errorf("%s%s: the app's own cookie is gone: %q", st.site, st.path, setCookieNames(res))
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(st.cookies))
				if !slices.Equal(got, want) {
					t.Errorf("%s%s: session cookies %v, want %v: %q", st.site, st.path, got, want, setCookieNames(res))
				}
			}
		})
	}
}
