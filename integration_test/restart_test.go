package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestSessionsSurviveRestart stops the Caddy process and starts a new one
// on the same bolt file: the session is still there.
func TestSessionsSurviveRestart(t *testing.T) {
	up := startUpstream(t)
	port, admin := freePort(t), freePort(t)
	db := filepath.Join(t.TempDir(), "sessions.db")
	p := startCaddy(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store bolt %s
	}
	reverse_proxy %s
}
`, admin, port, db, up.addr()), admin)
	waitPort(t, port)

	s := &site{t: t, tester: caddytest.NewTester(t), port: port}
	s.tester.Client.Jar = nil
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	if v.sid == "" {
		t.Fatal("login issued no session")
	}

	p.stop()
	p.start()
	waitPort(t, port)

	r := v.get("/")
	expectStatus(t, r, http.StatusOK)
	expectSession(t, r, map[string]string{"X-Session-User": "alice"})
}
