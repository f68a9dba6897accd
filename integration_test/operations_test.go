package integration_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// recipeSite runs the README's recipe after marker as written, with only
// its site address, its upstream (up) and its store (a bolt file of the
// test's) replaced, and returns the site.
func recipeSite(t *testing.T, marker string, up *upstream) *site {
	t.Helper()
	port := freePort(t)
	config := recipe(t, marker)
	config = strings.Replace(config, "app.example.com", fmt.Sprintf("http://127.0.0.1:%d", port), 1)
	config = strings.Replace(config, "127.0.0.1:9000", up.addr(), 1)
	config = withTestStore(t, config)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)+config, "caddyfile")
	return s
}

// withTestStore gives the session directive of a recipe, which has no
// store line, a bolt file of the test's.
func withTestStore(t *testing.T, config string) string {
	t.Helper()
	store := "store bolt " + filepath.Join(t.TempDir(), "s.db")
	if strings.Contains(config, "\tsession {\n") {
		return strings.Replace(config, "\tsession {\n", "\tsession {\n\t\t"+store+"\n", 1)
	}
	return strings.Replace(config, "\tsession\n", "\tsession {\n\t\t"+store+"\n\t}\n", 1)
}

// recipe returns the README's code block that follows the marker line.
func recipe(t *testing.T, marker string) string {
	t.Helper()
	readme := readExample(t, "README.md")
	_, after, ok := strings.Cut(readme, marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	_, block, ok := strings.Cut(after, "```caddyfile\n")
	if !ok {
		t.Fatalf("no caddyfile block after %q in README.md", marker)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// TestProtectedAreaRecipe runs the README's protected-area recipe as
// written, with only its site address, store and upstream replaced.
func TestProtectedAreaRecipe(t *testing.T) {
	up := startUpstream(t)
	s := recipeSite(t, "<!-- recipe: protected area -->", up)
	s.tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	anon := s.visitor()
	for path, want := range map[string]string{
		"/cart?x=1": "/login?next=%2Fcart%3Fx%3D1",
		// A second next parameter would be the attacker's to choose.
		"/a&next=//evil.example/": "/login?next=%2Fa%26next%3D%2F%2Fevil.example%2F",
	} {
		r := anon.get(path)
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
			t.Fatalf("anonymous %s: %d Location %q, want a redirect to %s", path, r.StatusCode, r.Header.Get("Location"), want)
		}
		if next := mustParseQuery(t, r.Header.Get("Location")); len(next["next"]) != 1 || next.Get("next") != path {
			t.Fatalf("anonymous %s: the login page gets next=%q, want exactly the request's URI", path, next["next"])
		}
	}
	expectStatus(t, anon.get("/login"), http.StatusOK) // the login page itself is open

	alice := s.visitor()
	alice.get("/login", "X-Session-Set-User: alice")
	expectStatus(t, alice.get("/cart"), http.StatusOK)
	expectStatus(t, alice.get("/admin/users"), http.StatusForbidden)

	root := s.visitor()
	root.get("/login", "X-Session-Set-User: root", "X-Session-Set-Roles: admin")
	expectSession(t, root.get("/admin/users"), map[string]string{"X-Session-User": "root", "X-Session-Roles": "admin"})
}

func mustParseQuery(t *testing.T, location string) url.Values {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestMatcherInCaddyfileAndCEL(t *testing.T) {
	up := startUpstream(t)
	port := freePort(t)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	// The matchers sit in a route before the session handler, so they must
	// load the session themselves; the handler then reuses it.
	s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	route {
		@staff session roles admin editor
		header @staff X-Staff yes
		@cel expression session('user', 'alice') && path('/cel')
		respond @cel "cel matched alice" 200
		@anon not session user
		header @anon X-Anon yes
		session {
			store bolt %s
		}
		reverse_proxy %s
	}
}
`, adminPort, port, filepath.Join(t.TempDir(), "s.db"), up.addr()), "caddyfile")

	cases := []struct {
		name, user, roles, path string
		staff, anon             bool
		body                    string
	}{
		{name: "anonymous", path: "/", anon: true},
		{name: "plain user", user: "bob", path: "/"},
		{name: "admin", user: "carol", roles: "admin", path: "/", staff: true},
		{name: "editor", user: "dave", roles: "editor", path: "/", staff: true},
		{name: "other role", user: "erin", roles: "viewer", path: "/"},
		{name: "cel alice", user: "alice", path: "/cel", body: "cel matched alice"},
		{name: "cel not alice", user: "bob", path: "/cel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := s.visitor()
			if c.user != "" {
				cmds := []string{"X-Session-Set-User: " + c.user}
				if c.roles != "" {
					cmds = append(cmds, "X-Session-Set-Roles: "+c.roles)
				}
				v.get("/login", cmds...)
			}
			r := v.get(c.path)
			if got := r.Header.Get("X-Staff") == "yes"; got != c.staff {
				t.Errorf("staff matcher = %v, want %v", got, c.staff)
			}
			if got := r.Header.Get("X-Anon") == "yes"; got != c.anon {
				t.Errorf("anonymous matcher = %v, want %v", got, c.anon)
			}
			if c.body != "" && string(r.body) != c.body {
				t.Errorf("body = %q, want %q", r.body, c.body)
			}
			if c.body == "" && c.user != "" && r.session()["X-Session-User"] != c.user {
				t.Errorf("the handler did not forward the session the matcher loaded: %v", r.session())
			}
		})
	}
}

func TestDestroyAllEndsEveryDeviceOfTheUser(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		phone, laptop, tablet, bob := s.visitor(), s.visitor(), s.visitor(), s.visitor()
		for _, v := range []*visitor{phone, laptop, tablet} {
			v.get("/login", "X-Session-Set-User: alice")
		}
		bob.get("/login", "X-Session-Set-User: bob")

		r := laptop.get("/logout-everywhere", "X-Session-Destroy-All: true")
		if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 {
			t.Fatal("Destroy-All did not expire the caller's cookie")
		}
		for name, v := range map[string]*visitor{"phone": phone, "tablet": tablet} {
			if got := v.get("/").session(); len(got) != 0 {
				t.Errorf("alice's %s is still logged in: %v", name, got)
			}
		}
		expectSession(t, bob.get("/"), map[string]string{"X-Session-User": "bob"})
	})
}

// TestMetrics runs a scripted sequence and reads the counters from Caddy's
// admin /metrics, before and after a reload.
func TestMetrics(t *testing.T) {
	s := newSite(t, "")
	before := scrapeMetrics(t)
	a, b := s.visitor(), s.visitor()
	a.get("/login", "X-Session-Set-User: alice") // created
	b.get("/", "X-Session-Set-Cart: apple")      // created
	b.get("/login", "X-Session-Set-User: bob")   // renewed (login)
	b.get("/sudo", "X-Session-Renew: true")      // renewed
	a.get("/", "X-Session-Set-Bad.Key: 1")       // rejected: invalid_key
	a.get("/logout", "X-Session-Destroy: true")  // destroyed: logout
	b.get("/all", "X-Session-Destroy-All: true") // destroyed: logout_all

	want := map[string]float64{
		`caddy_session_created_total{store="bolt"}`:                      2,
		`caddy_session_renewed_total{store="bolt"}`:                      2,
		`caddy_session_commands_rejected_total{reason="invalid_key"}`:    1,
		`caddy_session_destroyed_total{cause="logout",store="bolt"}`:     1,
		`caddy_session_destroyed_total{cause="logout_all",store="bolt"}`: 1,
		// Not Destroy-All: it ends the user's sessions, its own among them,
		// without an update.
		`caddy_session_store_operation_duration_seconds_count{operation="update",store="bolt"}`: 5,
	}
	check := func(after map[string]float64) {
		t.Helper()
		for name, delta := range want {
			if got := after[name] - before[name]; got != delta {
				t.Errorf("%s went up by %v, want %v", name, got, delta)
			}
		}
		for name := range after {
			if strings.Contains(name, "alice") || strings.Contains(name, "bob") {
				t.Errorf("a metric label carries a session value: %s", name)
			}
		}
	}
	check(scrapeMetrics(t))

	s.options = "idle_timeout 20m"
	s.load()
	check(scrapeMetrics(t))
	s.visitor().get("/login", "X-Session-Set-User: carol")
	want[`caddy_session_created_total{store="bolt"}`]++
	want[`caddy_session_store_operation_duration_seconds_count{operation="update",store="bolt"}`]++
	check(scrapeMetrics(t))
}

// scrapeMetrics reads the admin endpoint's Prometheus text into a map from
// series (name and labels) to value.
func scrapeMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_session_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
