package integration_test

import (
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestSessionsSurviveRestart stops the Caddy process and starts a new one
// on the same bolt file: the session is still there.
func TestSessionsSurviveRestart(t *testing.T) {
	slow(t, "stops and starts the Caddy binary")
	up := startUpstream(t)
	p, port, _ := startBoltCaddy(t, up)

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
