package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// multiSite is a Caddy with several sites, each on a port of its own.
type multiSite struct {
	t      *testing.T
	tester *caddytest.Tester
	up     *upstream
	ports  map[string]int
	dir    string
}

func newMultiSite(t *testing.T, names ...string) *multiSite {
	m := &multiSite{t: t, tester: caddytest.NewTester(t), up: startUpstream(t), ports: map[string]int{}, dir: t.TempDir()}
	m.tester.Client.Jar = nil
	for _, n := range names {
		m.ports[n] = freePort(t)
	}
	return m
}

// load loads a Caddyfile of sites; in each site body, {up} is the upstream,
// {db:name} a bolt file, and the sites are in the order given.
func (m *multiSite) load(sites ...[2]string) {
	m.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n", adminPort, freePort(m.t), freePort(m.t))
	for _, s := range sites {
		fmt.Fprintf(&b, "http://127.0.0.1:%d {\n%s\n}\n", m.ports[s[0]], m.expand(s[1]))
	}
	m.tester.InitServer(b.String(), "caddyfile")
}

func (m *multiSite) expand(body string) string {
	body = strings.ReplaceAll(body, "{up}", m.up.addr())
	for {
		i := strings.Index(body, "{db:")
		if i < 0 {
			return body
		}
		j := strings.Index(body[i:], "}") + i
		body = body[:i] + filepath.Join(m.dir, body[i+4:j]+".db") + body[j+1:]
	}
}

// get sends a GET to a site with a Cookie header and upstream commands,
// and returns the response and its body.
func (m *multiSite) get(site, path, cookie string, commands ...string) (*http.Response, string) {
	m.t.Helper()
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	return m.send(site, http.MethodGet, path, h, commands...)
}

// send sends a request of method to a site with the headers h and
// upstream commands, and returns the response and its body.
func (m *multiSite) send(site, method, path string, h http.Header, commands ...string) (*http.Response, string) {
	m.t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", m.ports[site], path), nil)
	if err != nil {
		m.t.Fatal(err)
	}
	for name, values := range h {
		req.Header[name] = values
	}
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	res, err := m.tester.Client.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assertNoNamespace(m.t, res.Header)
	return res, string(body)
}

// login sets keys on a site and returns the cookie that holds the session.
func (m *multiSite) login(site, cookieName string, commands ...string) string {
	m.t.Helper()
	return m.loginAt(site, "/", "", cookieName, commands...)
}

// loginAt is login on a path of the site, with a cookie already held
// ("" for none): the cookie the response sets.
func (m *multiSite) loginAt(site, path, cookie, cookieName string, commands ...string) string {
	m.t.Helper()
	res, _ := m.get(site, path, cookie, commands...)
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			return c.Name + "=" + c.Value
		}
	}
	m.t.Fatalf("%s%s issued no %s cookie", site, path, cookieName)
	return ""
}

// The README's protected area, in a route on a site of its own, beside
// other sites with sessions of their own.
const adminSite = `	route {
		@admins {
			path /admin*
			session role admin
		}
		respond @admins "%s ADMIN" 200
		respond /admin* "forbidden" 403
		session {
			store bolt {db:%s}
			%s
		}
		reverse_proxy {up}
	}`

func TestSessionMatcherReadsItsOwnSite(t *testing.T) {
	m := newMultiSite(t, "a", "e", "b")
	m.load(
		[2]string{"a", "session {\n\t\tstore bolt {db:a}\n\t}\n\treverse_proxy {up}"},
		[2]string{"e", fmt.Sprintf(adminSite, "E", "e", "")},
		[2]string{"b", fmt.Sprintf(adminSite, "B", "b", "cookie bsid")},
	)
	foreign := m.login("a", "sid", "X-Session-Set-Role: admin")
	for _, site := range []string{"e", "b"} {
		res, body := m.get(site, "/admin", foreign)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("site %s: an admin session of site a opened /admin: %d %q", site, res.StatusCode, body)
		}
	}
	for site, cookie := range map[string]string{"e": "sid", "b": "bsid"} {
		own := m.login(site, cookie, "X-Session-Set-Role: admin")
		res, body := m.get(site, "/admin", own)
		if want := strings.ToUpper(site) + " ADMIN"; res.StatusCode != http.StatusOK || body != want {
			t.Errorf("site %s: its own admin got %d %q, want 200 %q", site, res.StatusCode, body, want)
		}
	}
}

func TestSessionMatcherNeedsOneHandler(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"none", "@a session role admin\n\trespond @a \"x\"",
			"no session handler in its site or route"},
		{"several", "route {\n\t\t@a session role admin\n\t\trespond @a \"x\"\n\t\tsession {\n\t\t\tstore bolt {db:one}\n\t\t}\n\t\tsession {\n\t\t\tstore bolt {db:two}\n\t\t\tcookie two\n\t\t}\n\t}",
			"2 session handlers share its route list; name the cookie of one"},
		{"named but missing", "@a session role admin {\n\t\tcookie nope\n\t}\n\trespond @a \"x\"\n\tsession {\n\t\tstore bolt {db:one}\n\t}",
			`no session handler has cookie "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMultiSite(t, "s")
			config := fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\t%s\n}\n", adminPort, m.ports["s"], m.expand(c.body))
			caddytest.AssertLoadError(t, config, "caddyfile", strings.ReplaceAll(c.want, `"`, `\"`))
		})
	}
	t.Run("several, one named", func(t *testing.T) {
		m := newMultiSite(t, "s")
		m.load([2]string{"s", `route {
		@a session role admin {
			cookie two
		}
		respond @a "TWO ADMIN"
		session {
			store bolt {db:one}
		}
		session {
			store bolt {db:two}
			cookie two
		}
		reverse_proxy {up}
	}`})
		two := m.login("s", "two", "X-Session-Set-Role: admin")
		if res, body := m.get("s", "/", two); body != "TWO ADMIN" {
			t.Fatalf("the matcher naming cookie two did not read its session: %d %q", res.StatusCode, body)
		}
	})
}

func TestSitesDoNotShareSessions(t *testing.T) {
	m := newMultiSite(t, "shop", "blog", "other")
	bare := "session\n\treverse_proxy {up}"
	m.load([2]string{"shop", bare}, [2]string{"blog", "session {\n\t\twritable cart\n\t}\n\treverse_proxy {up}"})
	login := m.login("shop", "sid", "X-Session-Set-User: admin")
	if _, body := m.get("blog", "/", login); strings.Contains(body, "X-Session-User") {
		t.Fatalf("a login on one site is a session on another: %s", body)
	}
	if _, body := m.get("shop", "/", login); !strings.Contains(body, "X-Session-User") {
		t.Fatalf("the login does not work on its own site: %s", body)
	}

	// The default realm is the site's, not its place in the config: a
	// site added before it renumbers the servers and keeps the session.
	m.load([2]string{"other", bare}, [2]string{"shop", bare}, [2]string{"blog", bare})
	if _, body := m.get("shop", "/", login); !strings.Contains(body, "X-Session-User") {
		t.Fatalf("the session did not survive a reload that added another site: %s", body)
	}
	if _, body := m.get("other", "/", login); strings.Contains(body, "X-Session-User") {
		t.Fatalf("the new site adopted another site's session: %s", body)
	}
}

func TestSitesShareSessionsByRealm(t *testing.T) {
	m := newMultiSite(t, "www", "api")
	shared := "session {\n\t\trealm example\n\t}\n\treverse_proxy {up}"
	m.load([2]string{"www", shared}, [2]string{"api", shared})
	login := m.login("www", "sid", "X-Session-Set-User: alice")
	if _, body := m.get("api", "/", login); !strings.Contains(body, "alice") {
		t.Fatalf("two sites of one realm do not share the session: %s", body)
	}
}

func TestDestroyAllStaysInItsRealm(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "") // the store line, bolt or Redis, for both sites
		m := newMultiSite(t, "one", "two")
		body := "session {\n\t\t" + s.store + "\n\t}\n\treverse_proxy {up}"
		m.load([2]string{"one", body}, [2]string{"two", body})
		one := m.login("one", "sid", "X-Session-Set-User: alice")
		two := m.login("two", "sid", "X-Session-Set-User: alice")
		m.get("one", "/", one, "X-Session-Destroy-All: true")
		if _, body := m.get("two", "/", two); !strings.Contains(body, "alice") {
			t.Fatalf("a logout everywhere on one site ended alice's session on another: %s", body)
		}
		if _, body := m.get("one", "/", one); strings.Contains(body, "alice") {
			t.Fatalf("the logout everywhere did not end its own session: %s", body)
		}
	})
}

// A CEL session() cannot be tied to a handler when the config loads: it
// reads the session a handler or a placed matcher has loaded, and is an
// error, never a silent non-match, before one has.
func TestCELSessionNeedsTheSessionLoaded(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `route {
		route /early {
			@early expression session('user')
			respond @early "matched early"
		}
		session {
			store bolt {db:s}
		}
		@late {
			path /late
			expression session('user', 'alice')
		}
		respond @late "matched late"
		reverse_proxy {up}
	}`})
	login := m.login("s", "sid", "X-Session-Set-User: alice")
	if res, body := m.get("s", "/early", login); res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("session() before any handler ran: %d %q, want 500", res.StatusCode, body)
	}
	if res, body := m.get("s", "/late", login); body != "matched late" {
		t.Fatalf("session() after the handler: %d %q, want a match", res.StatusCode, body)
	}
}

func TestAdminRevokeActsInOneRealm(t *testing.T) {
	m := newMultiSite(t, "one", "two")
	body := "session {\n\t\tstore bolt {db:shared}\n\t}\n\treverse_proxy {up}"
	m.load([2]string{"one", body}, [2]string{"two", body})
	one := m.login("one", "sid", "X-Session-Set-User: alice")
	two := m.login("two", "sid", "X-Session-Set-User: alice")

	a := sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`)
	if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), "2 realms use store") {
		t.Fatalf("a revoke that names no realm of two: %d %s, want 400 naming the realms", a.status, a.body)
	}
	realm := fmt.Sprintf("127.0.0.1@:%d", m.ports["one"])
	a = sessionAPI(t, http.MethodPost, "/session/revoke", fmt.Sprintf(`{"value": "alice", "realm": %q}`, realm))
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"revoked":1`) {
		t.Fatalf("revoke in realm %s: %d %s, want one session revoked", realm, a.status, a.body)
	}
	if _, body := m.get("one", "/", one); strings.Contains(body, "alice") {
		t.Fatalf("the revoked realm's session lives on: %s", body)
	}
	if _, body := m.get("two", "/", two); !strings.Contains(body, "alice") {
		t.Fatalf("a revoke in one realm ended the other realm's session: %s", body)
	}
}
