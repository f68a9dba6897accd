package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// hostSites is a Caddy whose sites share one port and are told apart by
// their host, as the sites of one server are: a session handler in a
// named route (`&(name)`, run by `invoke`) is one handler for every site
// of the server that invokes it.
type hostSites struct {
	t      *testing.T
	tester *caddytest.Tester
	up     *upstream
	port   int
	db     string
}

func newHostSites(t *testing.T) *hostSites {
	h := &hostSites{t: t, tester: caddytest.NewTester(t), up: startUpstream(t), port: freePort(t),
		db: filepath.Join(t.TempDir(), "sessions.db")}
	h.tester.Client.Jar = nil
	return h
}

// config is a Caddyfile of the sites given, with {port} the shared port,
// {up} the upstream and {db} the one bolt file of every handler.
func (h *hostSites) config(sites string) string {
	r := strings.NewReplacer("{port}", fmt.Sprint(h.port), "{up}", h.up.addr(), "{db}", h.db)
	return fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n%s",
		adminPort, freePort(h.t), freePort(h.t), r.Replace(sites))
}

func (h *hostSites) load(sites string) {
	h.t.Helper()
	h.tester.InitServer(h.config(sites), "caddyfile")
	waitOneListener(h.t, h.port)
}

// reload posts sites to the admin endpoint as a new config, and returns
// the answer: 200, or the error of a config Caddy refused (which leaves
// the running one in place).
func (h *hostSites) reload(sites string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(h.config(sites)))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		waitOneListener(h.t, h.port) // the previous config's may drop a fresh connection
	}
	return res.StatusCode, string(body)
}

// user sends a GET with the cookie (and commands for the upstream) to the
// site of host, and returns the user the upstream was given ("" for
// none) and the sid cookie the response set ("" for none).
func (h *hostSites) user(host, cookie string, commands ...string) (user, set string) {
	h.t.Helper()
	got, set := h.visit(host, cookie, nil, commands...)
	return got.Headers.Get("X-Session-User"), set
}

// visit sends a GET with the cookie, the client's headers and commands
// for the upstream to the site of host, and returns what the upstream
// was given and the sid cookie the response set ("" for none).
func (h *hostSites) visit(host, cookie string, header http.Header, commands ...string) (got seen, set string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", h.port), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = fmt.Sprintf("%s:%d", host, h.port)
	for name, values := range header {
		req.Header[name] = values
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	res, err := h.tester.Client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assertNoNamespace(h.t, res.Header)
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("%s answered %d: %s", host, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, &got); err != nil {
		h.t.Fatalf("%s: the upstream's answer is no JSON: %v: %s", host, err, body)
	}
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			set = c.Name + "=" + c.Value
		}
	}
	return got, set
}

// login logs user in at the site of host and returns the cookie.
func (h *hostSites) login(host, user string) string {
	h.t.Helper()
	_, cookie := h.user(host, "", "X-Session-Set-User: "+user)
	if cookie == "" {
		h.t.Fatalf("a login at %s set no cookie", host)
	}
	if got, _ := h.user(host, cookie); got != user {
		h.t.Fatalf("the login at %s does not open there: user %q, want %q", host, got, user)
	}
	return cookie
}

// The session of a catch-all site, whose default realm is "*@:port".
const catchAllSite = `
http://:{port} {
	session {
		store bolt {db}
	}
	reverse_proxy {up}
}
`

// TestNamedRouteSessionIsOfTheSiteThatInvokesIt: a session handler in a
// named route serves the site that invokes it, and its default realm must
// be that site's. Placed at the server, it had the realm of a site with
// no host on that port ("*@:port"): a visitor who logged in at a
// catch-all site beside it (any host name that reaches the server, an
// app of its own) was logged in at the named route's site too, and the
// other way round, with no warning.
func TestNamedRouteSessionIsOfTheSiteThatInvokesIt(t *testing.T) {
	named := `
&(sess) {
	session {
		store bolt {db}
	}
}
`
	cases := []struct{ name, sites string }{
		{"invoked by the site", named + `
http://a.localhost:{port} {
	route {
		invoke sess
		reverse_proxy {up}
	}
}
` + catchAllSite},
		{"invoked in a handle", named + `
http://a.localhost:{port} {
	handle /* {
		invoke sess
		reverse_proxy {up}
	}
}
` + catchAllSite},
		{"invoked through another named route", named + `
&(outer) {
	invoke sess
}
http://a.localhost:{port} {
	route {
		invoke outer
		reverse_proxy {up}
	}
}
` + catchAllSite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHostSites(t)
			h.load(c.sites)
			foreign := h.login("elsewhere.localhost", "mallory")
			if got, _ := h.user("a.localhost", foreign); got != "" {
				t.Errorf("a session of the catch-all site opened the named route's site as user %q", got)
			}
			own := h.login("a.localhost", "alice")
			if got, _ := h.user("elsewhere.localhost", own); got != "" {
				t.Errorf("a session of the named route's site opened the catch-all site as user %q", got)
			}
			realm := fmt.Sprintf("a.localhost@:%d", h.port)
			if realms := sessionRealms(t); !strings.Contains(realms, realm) {
				t.Errorf("the named route's session is not of its site's realm %q: the store holds realms %s", realm, realms)
			}
		})
	}
}

// sessionRealms lists the realms of the sessions of the only store, as
// the admin API shows them.
func sessionRealms(t *testing.T) string {
	t.Helper()
	a := sessionAPI(t, http.MethodGet, "/session/sessions", "")
	if a.status != http.StatusOK {
		t.Fatalf("listing the sessions: %d %s", a.status, a.body)
	}
	var page struct {
		Sessions []struct {
			Realm string `json:"realm"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(a.body, &page); err != nil {
		t.Fatal(err)
	}
	var realms []string
	for _, s := range page.Sessions {
		realms = append(realms, fmt.Sprintf("%q", s.Realm))
	}
	return strings.Join(realms, ", ")
}

// TestNamedRouteInvokedBySeveralSites: one handler has one realm, so a
// named route's session that two sites invoke gave both one session,
// which the README promises sites never share by accident. Such a
// config must name the realm, and then shares the sessions as it says.
func TestNamedRouteInvokedBySeveralSites(t *testing.T) {
	sites := func(realm string) string {
		return `
&(sess) {
	session {
		store bolt {db}
		` + realm + `
	}
}
http://a.localhost:{port} {
	route {
		invoke sess
		reverse_proxy {up}
	}
}
http://b.localhost:{port} {
	route {
		invoke sess
		reverse_proxy {up}
	}
}
`
	}
	t.Run("default realm", func(t *testing.T) {
		h := newHostSites(t)
		h.load(catchAllSite)
		status, body := h.reload(sites(""))
		if want := "session handler in a named route that 2 sites invoke"; status == http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("a named route's session that two sites invoke, with the default realm, loaded: %d %s; want it refused with %q", status, body, want)
		}
		// The realm such a handler had before, which keeps its sessions.
		if hint := fmt.Sprintf(`realm \"*@:%d\" keeps the sessions`, h.port); !strings.Contains(body, hint) {
			t.Errorf("the refusal does not name the realm that keeps the sessions (%s): %s", hint, body)
		}
	})
	t.Run("the realm of earlier versions", func(t *testing.T) {
		// What a catch-all site's handler stores is of the realm that a
		// named route's handler had before: named, it opens them again.
		h := newHostSites(t)
		h.load(catchAllSite)
		cookie := h.login("a.localhost", "alice")
		h.load(sites(fmt.Sprintf("realm *@:%d", h.port)))
		for _, host := range []string{"a.localhost", "b.localhost"} {
			if got, _ := h.user(host, cookie); got != "alice" {
				t.Errorf("a session of realm *@:%d does not open %s with that realm named: user %q", h.port, host, got)
			}
		}
	})
	t.Run("named realm", func(t *testing.T) {
		h := newHostSites(t)
		h.load(sites("realm shop"))
		cookie := h.login("a.localhost", "alice")
		if got, _ := h.user("b.localhost", cookie); got != "alice" {
			t.Fatalf("two sites that name one realm do not share the session: user %q at b", got)
		}
	})
}

// TestNamedRouteRealmAcrossReloads: the realm of a named route's session
// is its site's, so a reload that moves the session directive between
// the site and a named route keeps its users logged in, and one that
// adds a catch-all site on the same port does not hand it their sessions.
func TestNamedRouteRealmAcrossReloads(t *testing.T) {
	inSite := `
http://a.localhost:{port} {
	session {
		store bolt {db}
	}
	reverse_proxy {up}
}
`
	inNamedRoute := `
&(sess) {
	session {
		store bolt {db}
	}
}
http://a.localhost:{port} {
	route {
		invoke sess
		reverse_proxy {up}
	}
}
`
	h := newHostSites(t)
	h.load(inSite)
	alice := h.login("a.localhost", "alice")
	h.load(inNamedRoute)
	if got, _ := h.user("a.localhost", alice); got != "alice" {
		t.Fatalf("moving session into a named route logged alice out: user %q", got)
	}
	h.load(inNamedRoute + catchAllSite)
	if got, _ := h.user("elsewhere.localhost", alice); got != "" {
		t.Fatalf("a catch-all site added by a reload opened the named route's session as user %q", got)
	}
	mallory := h.login("elsewhere.localhost", "mallory")
	if got, _ := h.user("a.localhost", mallory); got != "" {
		t.Fatalf("after a reload, a session of the catch-all site opened the named route's site as user %q", got)
	}
	h.load(inSite + catchAllSite)
	if got, _ := h.user("a.localhost", alice); got != "alice" {
		t.Fatalf("moving session back into the site logged alice out: user %q", got)
	}
}

// kids returns the key IDs the session_jwks at /jwks of the site of host
// serves, and the status it answered with.
func (h *hostSites) kids(host string) (int, []string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jwks", h.port), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = fmt.Sprintf("%s:%d", host, h.port)
	res, err := h.tester.Client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &set); err != nil {
			h.t.Fatalf("GET /jwks at %s: %v: %s", host, err, body)
		}
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return res.StatusCode, kids
}

// TestNamedRouteSigningKeysAreOfItsSite: a realm signs with keys of its
// own and a site's session_jwks serves its own realm's. A named route's
// session with sign, of the realm "*@:port" of a catch-all site beside
// it, signed with that site's key, and each site's key set verified the
// other's tokens. With a realm named, a named route's session that two
// sites invoke is of each, and each site's session_jwks serves its keys.
func TestNamedRouteSigningKeysAreOfItsSite(t *testing.T) {
	t.Run("beside a catch-all site", func(t *testing.T) {
		h := newHostSites(t)
		h.load(`
&(sess) {
	session {
		store bolt {db}
		sign
	}
}
http://a.localhost:{port} {
	route {
		session_jwks /jwks
		invoke sess
		reverse_proxy {up}
	}
}
http://:{port} {
	session_jwks /jwks
	session {
		store bolt {db}
		sign
	}
	reverse_proxy {up}
}
`)
		statusA, a := h.kids("a.localhost")
		statusAll, all := h.kids("elsewhere.localhost")
		if statusA != http.StatusOK || statusAll != http.StatusOK || len(a) == 0 || len(all) == 0 {
			t.Fatalf("the key sets: a %d %v, the catch-all %d %v; want keys at both", statusA, a, statusAll, all)
		}
		for _, kid := range a {
			if slices.Contains(all, kid) {
				t.Fatalf("the named route's site and the catch-all site publish one key %s: each one's app accepts the other's tokens", kid)
			}
		}
	})
	t.Run("one realm invoked by two sites", func(t *testing.T) {
		h := newHostSites(t)
		site := func(host string) string {
			return `
http://` + host + `:{port} {
	route {
		session_jwks /jwks
		invoke sess
		reverse_proxy {up}
	}
}
`
		}
		h.load(`
&(sess) {
	session {
		store bolt {db}
		realm shop
		sign
	}
}
` + site("a.localhost") + site("b.localhost"))
		statusA, a := h.kids("a.localhost")
		statusB, b := h.kids("b.localhost")
		if statusA != http.StatusOK || statusB != http.StatusOK || len(a) == 0 || !slices.Equal(a, b) {
			t.Fatalf("the sites of realm shop publish a %d %v and b %d %v; want its keys at both", statusA, a, statusB, b)
		}
	})
}
