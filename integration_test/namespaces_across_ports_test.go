package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// inNamespaceOf lists the names of h that a CGI or PHP app would read as
// headers of the namespace prefix: case-insensitive, with '_' and '.'
// read as '-', also when announced as trailers.
func inNamespaceOf(h http.Header, prefix string) []string {
	fold := strings.NewReplacer("_", "-", ".", "-")
	want := strings.ToLower(fold.Replace(prefix))
	var names []string
	for name := range h {
		folded := strings.ToLower(fold.Replace(name))
		if strings.HasPrefix(strings.TrimPrefix(folded, "trailer:"), want) {
			names = append(names, name)
		}
	}
	return names
}

// TestNamespaceOfAnotherPortNeverReachesTheApp: one app stands behind two
// sites of one Caddy on two ports, a public one (X-Session-) and an admin
// one whose handler has a prefix of its own (X-Admin-), as the README
// advises for two handlers an app must tell apart. A client that sends one
// site the other site's namespace, in any spelling, as a header or a
// trailer, also on a request that an error before the handler sends to
// the site's error routes, must not get it to the app; and the app's
// answer in the other site's namespace must not reach the client. Each
// handler removed only the namespaces of its own server (port), so
// X-Session-User: admin sent to the admin port reached the app.
func TestNamespaceOfAnotherPortNeverReachesTheApp(t *testing.T) {
	for _, globals := range []struct{ name, options string }{
		// Caddy drops request headers whose names hold '_' or '.', and,
		// for the names these options let through, the '-' spelling:
		// under each, only the plugin stands between some spellings
		// and the app.
		{"caddy's defaults", ""},
		{"underscores and dots let through", `servers {
		expected_underscore_headers X_Session_* X-Session_* X_Session-* X_Admin_* X-Admin_*
		expected_dot_headers X.Session.* X-Session.* X.Admin.* X-Admin.*
	}`},
	} {
		t.Run(globals.name, func(t *testing.T) { namespaceOfAnotherPort(t, globals.options) })
	}
}

func namespaceOfAnotherPort(t *testing.T, globals string) {
	app := new(hostileApp)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	m := newMultiSite(t, "pub", "admin")
	m.up = &upstream{srv}
	m.loadSites(globals,
		[2]string{"pub", "request_body {\n\t\tmax_size 8\n\t}\n\tsession {\n\t\tstore bolt {db:shared}\n\t}\n\thandle_errors {\n\t\trequest_body {\n\t\t\tset \"error\"\n\t\t}\n\t\treverse_proxy {up}\n\t}\n\treverse_proxy {up}"},
		[2]string{"admin", "request_body {\n\t\tmax_size 8\n\t}\n\tsession {\n\t\tstore bolt {db:shared}\n\t\theader_prefix X-Admin-\n\t}\n\thandle_errors {\n\t\trequest_body {\n\t\t\tset \"error\"\n\t\t}\n\t\treverse_proxy {up}\n\t}\n\treverse_proxy {up}"},
	)
	prefixOf := map[string]string{"pub": "X-Session-", "admin": "X-Admin-"}
	other := map[string]string{"pub": "admin", "admin": "pub"}
	rows := []struct {
		name string
		raw  string // header lines of the other site's namespace, with %s its prefix's first word ("Session", "Admin")
		body string
	}{
		{name: "as written", raw: "X-%s-User: root\n"},
		{name: "lower case", raw: "x-%[1]s-user: root\n"},
		{name: "upper case", raw: "X-%s-ROLE: root\n"},
		{name: "underscores", raw: "X_%s_User: root\n"},
		{name: "dots", raw: "X.%s.User: root\n"},
		{name: "twice", raw: "X-%[1]s-User: root\nX-%[1]s-User: admin\n"},
		{name: "named in Connection", raw: "Connection: X-%[1]s-User\nX-%[1]s-User: root\n"},
		{name: "as a trailer", raw: "Transfer-Encoding: chunked\nTrailer: X-%s-User\n",
			body: "2\r\nhi\r\n0\r\nX-%s-User: root\r\nX_%s_Role: admin\r\n\r\n"},
		{name: "on a body over max_size, which the error routes get", raw: "Content-Length: 20\nX-%[1]s-User: root\nX_%[1]s_Role: admin\n",
			body: "01234567890123456789"},
	}
	for _, to := range []string{"admin", "pub"} {
		word := strings.TrimSuffix(strings.TrimPrefix(prefixOf[other[to]], "X-"), "-")
		for _, tc := range rows {
			t.Run(to+"/"+tc.name, func(t *testing.T) {
				raw := strings.ReplaceAll(strings.ReplaceAll(tc.raw, "%s", "%[1]s"), "%[1]s", word)
				body := strings.ReplaceAll(tc.body, "%s", word)
				if word == "Session" {
					raw = strings.ReplaceAll(raw, "x-Session", "x-session")
				}
				req := "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + strings.ReplaceAll(raw, "\n", "\r\n") + "Connection: close\r\n\r\n" + body
				before := app.hits.Load()
				res, got, err := rawExchange(t, &site{t: t, port: m.ports[to]}, req)
				if err != nil {
					t.Fatal(err)
				}
				if app.hits.Load() != before+1 {
					t.Fatalf("status %d, the app was reached %d times, want once: %s", res.StatusCode, app.hits.Load()-before, got)
				}
				assertNoneLeaked(t, res)
				var saw appSaw
				if err := json.Unmarshal(got, &saw); err != nil {
					t.Fatalf("app answer %q: %v", got, err)
				}
				for _, p := range []string{"X-Session-", "X-Admin-"} {
					if leaked := append(inNamespaceOf(saw.Headers, p), inNamespaceOf(saw.Trailers, p)...); len(leaked) != 0 {
						t.Errorf("the app behind %s got the client's %q (%q, trailers %q)", to, leaked, saw.Headers, saw.Trailers)
					}
				}
			})
		}
		t.Run(to+"/the app answers in the other namespace", func(t *testing.T) {
			otherPrefix := prefixOf[other[to]]
			res, _ := m.get(to, "/", "", otherPrefix+"Set-Role: admin", otherPrefix+"Destroy: true")
			if leaked := inNamespaceOf(res.Header, otherPrefix); len(leaked) != 0 {
				t.Errorf("the client got %q from the app behind %s", leaked, to)
			}
			if c := res.Header.Get("Set-Cookie"); c != "" {
				t.Errorf("commands of another namespace set a cookie: %s", c)
			}
		})
	}
	// The sites' own sessions still work beside each other.
	for site, prefix := range prefixOf {
		res, _ := m.get(site, "/", "", prefix+"Set-User: alice")
		var cookie string
		for _, c := range res.Cookies() {
			cookie = c.Name + "=" + c.Value
		}
		_, body := m.get(site, "/", cookie)
		if !strings.Contains(body, fmt.Sprintf(`"%sUser":["alice"]`, prefix)) {
			t.Errorf("%s: its own login does not open: %s", site, body)
		}
	}
}

// TestNestedNamespacesOfTwoPortsEachWork: two sites on two ports may use
// prefixes one of which holds the other (X-Session- and
// X-Session-Admin-): each handler removes the other's namespace from the
// client's requests and its app's answers, and still forwards and takes
// its own.
func TestNestedNamespacesOfTwoPortsEachWork(t *testing.T) {
	m := newMultiSite(t, "pub", "admin")
	m.load(
		[2]string{"pub", "session {\n\t\tstore bolt {db:one}\n\t}\n\treverse_proxy {up}"},
		[2]string{"admin", "session {\n\t\tstore bolt {db:one}\n\t\theader_prefix X-Session-Admin-\n\t\tcookie asid\n\t}\n\treverse_proxy {up}"},
	)
	admin := m.login("admin", "asid", "X-Session-Admin-Set-User: root")
	m.get("admin", "/", admin, "X-Session-Admin-Set-Cart: 1")
	pub := m.login("pub", "sid", "X-Session-Set-User: alice")
	cases := []struct {
		site, cookie, forged string
		want                 map[string]string
	}{
		{"admin", admin, "X-Session-User", map[string]string{"X-Session-Admin-User": "root", "X-Session-Admin-Cart": "1"}},
		{"admin", admin, "X-Session-Admin-Role", map[string]string{"X-Session-Admin-User": "root", "X-Session-Admin-Cart": "1"}},
		{"pub", pub, "X-Session-Admin-User", map[string]string{"X-Session-User": "alice"}},
	}
	for _, c := range cases {
		h := http.Header{"Cookie": {c.cookie}, c.forged: {"forged"}}
		_, body := m.send(c.site, http.MethodGet, "/", h)
		var got seen
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v: %s", c.site, err, body)
		}
		names := requestNamespaceIn(got.Headers)
		if len(names) != len(c.want) {
			t.Errorf("%s with the client's %s: the app got %q, want %v", c.site, c.forged, names, c.want)
		}
		for name, v := range c.want {
			if got.Headers.Get(name) != v {
				t.Errorf("%s with the client's %s: the app got %s %q, want %q", c.site, c.forged, name, got.Headers.Get(name), v)
			}
		}
	}
}
