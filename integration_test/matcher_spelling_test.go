package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestSessionMatcherReadsEitherSpelling: "Keys that differ only in _ and -
// are one key" (README): commands, writable, renew_on, the identity key
// and sign's keys all find a key in either spelling, and the app is sent
// cart_items as X-Session-Cart-Items. The session matcher does not: a
// site that writes `session cart-items` (the spelling the app sees) never
// matches a session whose app set X-Session-Set-Cart_Items, and `session
// user-id` misses the user whose app set User_Id, so a route that guards
// an admin page by the key lets no one, or a route that sends visitors
// without the key to a login page sends everyone.
func TestSessionMatcherReadsEitherSpelling(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store bolt %s
	}
	@dashed {
		path /check
		session cart-items 3
	}
	respond @dashed "matched"
	respond /check "no match"
	reverse_proxy %s
}
`, adminPort, s.port, filepath.Join(dir, "s.db"), up.addr()), "caddyfile")

	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart_Items: 3"), http.StatusOK)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart-Items": "3"})
	if r := v.get("/check"); string(r.body) != "matched" {
		t.Errorf("`session cart-items 3` on a session the app sees as X-Session-Cart-Items: 3 answered %q, want matched", r.body)
	}
}
