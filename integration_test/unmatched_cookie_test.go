package integration_test

// A `session <matcher>` that does not match a request removes its session
// cookie from it (SECURITY.md: the ID never reaches the application, also
// on the paths a handler's matcher does not match). It did not when an
// earlier session handler of the same namespace had forwarded its session
// to the request: the unmatched handler then left the request alone, its
// own cookie included, so a visitor signed in to both /a/ and /b/ had the
// raw ID of the /b/ session sent to the app on every /a/ page.

import (
	"cmp"
	"net/http"
	"strings"
	"testing"
)

// TestUnmatchedSessionCookieAfterAForwardingHandler: on a path that one
// session handler matches and another does not, the app gets the session
// of the one that matches, and the cookie of neither (but one that
// forward_cookie forwards), whatever order the handlers run in and
// whether they share a namespace.
func TestUnmatchedSessionCookieAfterAForwardingHandler(t *testing.T) {
	const (
		a = "session /a/* {\n\t\t$STORE\n\t\tcookie sa\n\t}\n\t"
		b = "session /b/* {\n\t\t$STORE2\n\t\tcookie sb\n\t}\n\t"
		// b, in a namespace of its own
		bAdmin = "session /b/* {\n\t\t$STORE2\n\t\tcookie sb\n\t\theader_prefix X-Admin-\n\t}\n\t"
		// the whole site's session, with a stricter area's after it
		site = "session {\n\t\t$STORE\n\t\tcookie sa\n\t}\n\t"
		area = "session /b/* {\n\t\t$STORE2\n\t\tcookie sb\n\t\tidle_timeout 5m\n\t}\n\t"
		// the site's session forwards its cookie; the area's has the same name
		siteFwd = "session {\n\t\t$STORE\n\t\tcookie sa\n\t\tforward_cookie\n\t}\n\t"
		areaSa  = "session /b/* {\n\t\t$STORE\n\t\tcookie sa\n\t\tidle_timeout 5m\n\t}\n\t"
		// a deeper area of a's paths with b's sessions
		deepB = "session /a/b/* {\n\t\t$STORE2\n\t\tcookie sb\n\t}\n\t"
	)
	for _, tc := range []struct {
		name     string
		sessions string
		// paths to log in on, per cookie: the cookie's session is
		// made there
		loginA, loginB string
		prefixB        string // the namespace of b's commands; default X-Session-
		path           string
		// the cookies whose IDs the app may get on path (forward_cookie)
		forwarded []string
		want      map[string]string // the namespace headers the app gets on path
	}{
		{name: "a, then b of one namespace; on a's path", sessions: a + b, loginA: "/a/", loginB: "/b/", path: "/a/",
			want: map[string]string{"X-Session-User": "alice"}},
		{name: "a, then b of one namespace; on b's path", sessions: a + b, loginA: "/a/", loginB: "/b/", path: "/b/",
			want: map[string]string{"X-Session-User": "bob"}},
		{name: "b, then a of one namespace; on a's path", sessions: b + a, loginA: "/a/", loginB: "/b/", path: "/a/",
			want: map[string]string{"X-Session-User": "alice"}},
		{name: "a, then b of one namespace; on neither's path", sessions: a + b, loginA: "/a/", loginB: "/b/", path: "/c/",
			want: map[string]string{}},
		{name: "a, then b of another namespace; on a's path", sessions: a + bAdmin, loginA: "/a/", loginB: "/b/", prefixB: "X-Admin-", path: "/a/",
			want: map[string]string{"X-Session-User": "alice"}},
		{name: "a, then b of another namespace; on b's path", sessions: a + bAdmin, loginA: "/a/", loginB: "/b/", prefixB: "X-Admin-", path: "/b/",
			want: map[string]string{"X-Admin-User": "bob"}},
		{name: "a, then b, then a deeper one of b's cookie; on the deeper path", sessions: a + b + deepB, loginA: "/a/", loginB: "/b/", path: "/a/b/",
			want: map[string]string{"X-Session-User": "bob"}},
		{name: "a, then b, then a deeper one of b's cookie; on a's path", sessions: a + b + deepB, loginA: "/a/", loginB: "/b/", path: "/a/",
			want: map[string]string{"X-Session-User": "alice"}},
		{name: "the site's, then an area's; off the area", sessions: site + area, loginA: "/", loginB: "/b/", path: "/",
			want: map[string]string{"X-Session-User": "alice"}},
		{name: "the site's, then an area's; in the area", sessions: site + area, loginA: "/", loginB: "/b/", path: "/b/",
			want: map[string]string{"X-Session-User": "bob"}},
		{name: "the site's forwards its cookie, then an area's of that name; off the area", sessions: siteFwd + areaSa,
			loginA: "/", path: "/", forwarded: []string{"sa"},
			want: map[string]string{"X-Session-User": "alice"}},
		{name: "the site's forwards its cookie, then an area's of another name; off the area", sessions: siteFwd + area,
			loginA: "/", loginB: "/b/", path: "/", forwarded: []string{"sa"},
			want: map[string]string{"X-Session-User": "alice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMatchedSite(t, tc.sessions)
			ids := map[string]string{}
			login := func(path, cookie, prefix, user string) {
				if path == "" {
					return
				}
				r := s.visitor().get(path+"login", prefix+"Set-User: "+user)
				expectStatus(t, r, http.StatusOK)
				for _, c := range r.Cookies() {
					if c.Name == cookie {
						ids[cookie] = c.Value
					}
				}
				if ids[cookie] == "" {
					t.Fatalf("the login on %s issued no %s cookie: %q", path, cookie, r.Header.Values("Set-Cookie"))
				}
			}
			login(tc.loginA, "sa", "X-Session-", "alice")
			login(tc.loginB, "sb", cmp.Or(tc.prefixB, "X-Session-"), "bob")
			var jar []string
			for _, name := range []string{"sa", "sb"} {
				if ids[name] != "" {
					jar = append(jar, name+"="+ids[name])
				}
			}
			v := &visitor{site: s, cookies: "theme=dark; " + strings.Join(jar, "; ")}
			r := v.get(tc.path)
			expectStatus(t, r, http.StatusOK)
			got := map[string]string{}
			for name, values := range r.seen.Headers {
				if p := strings.ToLower(name); strings.HasPrefix(p, "x-session-") || strings.HasPrefix(p, "x-admin-") {
					got[name] = strings.Join(values, ",")
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("the app on %s got %v in the namespaces, want %v", tc.path, got, tc.want)
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Fatalf("the app on %s got %v in the namespaces, want %v", tc.path, got, tc.want)
				}
			}
			sent := strings.Join(r.seen.Headers.Values("Cookie"), "; ")
			for name, id := range ids {
				forwarded := false
				for _, f := range tc.forwarded {
					forwarded = forwarded || f == name
				}
				switch has := strings.Contains(sent, id); {
				case has && !forwarded:
					t.Fatalf("the app on %s got the raw ID of the %s cookie, whose handler does not forward it: Cookie %q", tc.path, name, sent)
				case !has && forwarded:
					t.Fatalf("the app on %s lost the %s cookie that forward_cookie forwards: Cookie %q", tc.path, name, sent)
				}
			}
			if !strings.Contains(sent, "theme=dark") {
				t.Fatalf("the app on %s lost the other cookies: Cookie %q", tc.path, sent)
			}
		})
	}
}
