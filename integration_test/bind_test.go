package integration_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/session"
)

// bind: a session presented by another client than the one it was created
// by is served as anonymous, logged, and left as it was for its owner,
// through a real Caddy on bolt and Redis.

// trustLoopbackProxy makes Caddy take the client's address from
// X-Forwarded-For, as behind a proxy on 127.0.0.1, and log as JSON to
// the file returned.
func trustLoopbackProxy(t *testing.T, s *site) string {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	s.globals = fmt.Sprintf(`servers {
		trusted_proxies static 127.0.0.1/32
		client_ip_headers X-Forwarded-For
	}
	log {
		output file %s
		format json
		exclude http.handlers.reverse_proxy
	}`, logFile)
	s.load()
	return logFile
}

// bindRow is a request from another client after a login.
type bindRow struct {
	name        string
	login, then []string // the headers of the login and of the request
	served      bool     // the request is given the session
	binding     string   // the binding logged when it is not
}

// checkBound logs a visitor in with row.login, presents the session with
// row.then, and checks that it is served, or served as anonymous with
// the session left whole for its owner, even when the stranger writes.
func checkBound(t *testing.T, s *site, logFile string, row bindRow) {
	t.Helper()
	owner := s.visitor()
	r := owner.do(http.MethodGet, "/login", append(row.login, "Test-Header", "X-Session-Set-User: alice")...)
	expectStatus(t, r, http.StatusOK)
	stolen := owner.sid

	stranger := &visitor{site: s, sid: stolen}
	r = stranger.do(http.MethodGet, "/account", row.then...)
	expectStatus(t, r, http.StatusOK)
	if row.served {
		expectSession(t, r, map[string]string{"X-Session-User": "alice"})
		return
	}
	expectSession(t, r, map[string]string{})

	// The stranger's commands start a session of its own, or end nothing.
	r = stranger.do(http.MethodGet, "/cart", append(row.then, "Test-Header", "X-Session-Set-Cart: stolen")...)
	expectStatus(t, r, http.StatusOK)
	if stranger.sid == stolen || stranger.sid == "" {
		t.Fatalf("the stranger's write did not start a session of its own")
	}
	thief := &visitor{site: s, sid: stolen}
	expectStatus(t, thief.do(http.MethodGet, "/logout", append(row.then, "Test-Header", "X-Session-Destroy: true")...), http.StatusOK)
	expectStatus(t, thief.do(http.MethodGet, "/logout-all", append(row.then, "Test-Header", "X-Session-Destroy-All: true")...), http.StatusOK)

	r = owner.do(http.MethodGet, "/account", row.login...)
	expectSession(t, r, map[string]string{"X-Session-User": "alice"})
	if owner.sid != stolen {
		t.Fatal("the owner's session changed")
	}
	wantBindLog(t, logFile, stolen, row.binding)
}

// wantBindLog checks that the log tells of a request refused the session
// of id by binding, by its short hash, and holds no raw ID.
func wantBindLog(t *testing.T, logFile, id, binding string) {
	t.Helper()
	short := session.HashID(id).Short()
	for _, l := range readLog(t, logFile) {
		if strings.Contains(l.raw, id) {
			t.Fatalf("the log holds a raw session ID: %s", l.raw)
		}
		if l.str("session") == short && l.str("binding") == binding && l.str("level") == "warn" {
			return
		}
	}
	t.Fatalf("no warning for session %s with binding %q in the log", short, binding)
}

func TestBindUserAgent(t *testing.T) {
	firefox := "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	long := strings.Repeat("a", 256)
	rows := []bindRow{
		{name: "the same browser", login: []string{"User-Agent", firefox}, then: []string{"User-Agent", firefox}, served: true},
		{name: "another browser", login: []string{"User-Agent", firefox}, then: []string{"User-Agent", "curl/8.5.0"}, binding: "user_agent"},
		{name: "no User-Agent", login: []string{"User-Agent", firefox}, then: []string{"User-Agent", ""}, binding: "user_agent"},
		{name: "a case change", login: []string{"User-Agent", firefox}, then: []string{"User-Agent", strings.ToLower(firefox)}, binding: "user_agent"},
		{name: "beyond the 256 bytes kept", login: []string{"User-Agent", long + "x"}, then: []string{"User-Agent", long + "y"}, served: true},
		{name: "within the 256 bytes kept", login: []string{"User-Agent", "y" + long}, then: []string{"User-Agent", "z" + long}, binding: "user_agent"},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "bind user_agent")
		logFile := trustLoopbackProxy(t, s)
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) { checkBound(t, s, logFile, row) })
		}
	})
}

func TestBindIP(t *testing.T) {
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	rows := []bindRow{
		{name: "the same address", login: from("203.0.113.5"), then: from("203.0.113.5"), served: true},
		{name: "the same IPv4 /24", login: from("203.0.113.5"), then: from("203.0.113.77"), served: true},
		{name: "another IPv4 /24", login: from("203.0.113.5"), then: from("203.0.114.5"), binding: "ip"},
		{name: "IPv4-mapped, same /24", login: from("203.0.113.5"), then: from("::ffff:203.0.113.9"), served: true},
		{name: "the same IPv6 /56", login: from("2001:db8:1:200::1"), then: from("2001:db8:1:2ff:ffff::1"), served: true},
		{name: "another IPv6 /56", login: from("2001:db8:1:200::1"), then: from("2001:db8:1:300::1"), binding: "ip"},
		{name: "IPv4 then IPv6", login: from("203.0.113.5"), then: from("2001:db8::1"), binding: "ip"},
		{name: "a proxy in between is not the client", login: from("203.0.113.5"), then: from("198.51.100.1, 203.0.113.5"), binding: "ip"},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "bind ip 24 56")
		logFile := trustLoopbackProxy(t, s)
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) { checkBound(t, s, logFile, row) })
		}
	})
}

// TestBindIPSourceAddress binds to the address the connection comes from:
// a forged X-Forwarded-For, with no trusted proxy, neither unbinds the
// owner nor binds a stranger; another loopback address is another client.
// Sessions created before bind was configured stay unbound.
func TestBindIPSourceAddress(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		before := s.visitor()
		before.get("/login", "X-Session-Set-User: bob")
		s.options = "bind ip"
		s.load()

		owner := s.visitor()
		owner.do(http.MethodGet, "/login", "X-Forwarded-For", "10.9.9.9", "Test-Header", "X-Session-Set-User: alice")
		r := owner.do(http.MethodGet, "/account", "X-Forwarded-For", "10.1.1.1")
		expectSession(t, r, map[string]string{"X-Session-User": "alice"})

		dialFrom(t, s, "127.0.0.2")
		stranger := &visitor{site: s, sid: owner.sid}
		expectSession(t, stranger.get("/account"), map[string]string{})
		unbound := &visitor{site: s, sid: before.sid}
		expectSession(t, unbound.get("/account"), map[string]string{"X-Session-User": "bob"})
	})
}

// dialFrom makes the site's client connect from the loopback address ip
// for the rest of the test.
func dialFrom(t *testing.T, s *site, ip string) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	prev := s.tester.Client.Transport
	s.tester.Client.Transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(func() { s.tester.Client.Transport = prev })
}

// TestBindRecipe runs the README's bind recipe as written, with only its
// site address, store and upstream replaced.
func TestBindRecipe(t *testing.T) {
	up := startUpstream(t)
	port := freePort(t)
	config := recipe(t, "<!-- recipe: bind -->")
	config = strings.Replace(config, "app.example.com", fmt.Sprintf("http://127.0.0.1:%d", port), 1)
	config = strings.Replace(config, "127.0.0.1:9000", up.addr(), 1)
	config = strings.Replace(config, "\tsession {\n", "\tsession {\n\t\tstore bolt "+filepath.Join(t.TempDir(), "s.db")+"\n", 1)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)+config, "caddyfile")

	owner := s.visitor()
	owner.login("alice", "browser 1")
	expectSession(t, owner.do(http.MethodGet, "/", "User-Agent", "browser 1"), map[string]string{"X-Session-User": "alice"})
	stranger := &visitor{site: s, sid: owner.sid}
	expectSession(t, stranger.do(http.MethodGet, "/", "User-Agent", "browser 2"), map[string]string{})
	dialFrom(t, s, "127.0.1.1") // another /24
	expectSession(t, stranger.do(http.MethodGet, "/", "User-Agent", "browser 1"), map[string]string{})
}
