package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestTunnelFollowsRenewalsAcrossSealing: a renewal of the same user keeps
// an open WebSocket open and follows the session to its new ID (README,
// "A renewal of the same user keeps the tunnel open"), whether or not the
// handler that renews it seals the session's values, and whatever the
// handler that opened the tunnel derived from the handshake's ID.
//
// The tunnel keeps the seal key of its handshake's ID, not the ID. It
// followed a forward record with that key only: one written by a request
// that held no key (a handler without seal_values, under which the
// session was plain) carries no successor key, and the tunnel took the
// renewal for another user's session and closed, at once; and a tunnel
// whose handler derived no key could not open the session once a handler
// with seal_values sealed it (after a reload that turned it on, while
// stream_close_delay keeps the previous config's tunnels), and closed at
// its next check. Each case rotates the session four times (renewals,
// remember-me on and off), then logs out: the logout still
// closes the tunnel, both ways.
func TestTunnelFollowsRenewalsAcrossSealing(t *testing.T) {
	const plain, sealed = "# no seal_values", "seal_values"
	// Each a new ID for the same user, from another tab.
	rotations := []string{"X-Session-Renew: true", "X-Session-Remember: true", "X-Session-Remember: false", "X-Session-Renew: true"}
	tests := []struct {
		name string
		// before is the session options of the config the user logs in
		// under; opened, of the one the tunnel opens under (empty: the
		// same); after, of the one the renewals go through (empty: the
		// same as opened). A route /vault/* with a nested handler of the
		// same store and realm, with seal_values, is added when vault is
		// set: the site's handler then derives the key for it.
		before, opened, after string
		vault                 bool
	}{
		{name: "a plain handler next to a nested one with seal_values", before: plain, vault: true},
		{name: "seal_values turned off by a reload, the session sealed before", before: sealed, opened: plain},
		{name: "seal_values turned on by a reload while the tunnel is open", before: plain, after: sealed},
		{name: "seal_values on throughout", before: sealed},
		{name: "seal_values off throughout", before: plain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &echoApp{closed: make(chan struct{}, 16)}
			srv := httptest.NewServer(app)
			t.Cleanup(srv.Close)
			s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: t.TempDir() + "/sessions.db", up: &upstream{srv}}
			s.tester.Client.Jar = nil
			config := func(options string) string {
				vault := ""
				if tt.vault {
					vault = fmt.Sprintf("\troute /vault/* {\n\t\tsession {\n\t\t\tstore bolt %s\n\t\t\tseal_values\n\t\t\tidle_timeout 2h\n\t\t\ttunnels 1h\n\t\t}\n\t\treverse_proxy %s\n\t}\n", s.db, s.up.addr())
				}
				// stream_close_delay keeps the tunnels of a config across
				// the reload that replaces it.
				return fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\tskip_install_trust\n}\nhttp://127.0.0.1:%d {\n\tsession {\n\t\tstore bolt %s\n\t\t%s\n\t\tidle_timeout 2h\n\t\ttunnels 1h\n\t}\n%s\treverse_proxy %s {\n\t\tstream_close_delay 1h\n\t}\n}\n",
					adminPort, s.port, s.port, s.db, options, vault, s.up.addr())
			}
			opened, after := tt.opened, tt.after
			if opened == "" {
				opened = tt.before
			}
			if after == "" {
				after = opened
			}
			s.reload(config(tt.before))
			alice := login(t, s, "alice")
			if opened != tt.before {
				s.reload(config(opened))
			}
			ws := openTunnel(t, alice)
			if after != opened {
				s.reload(config(after))
			}
			for _, rotation := range rotations {
				was := alice.sid
				expectStatus(t, alice.get("/", rotation), http.StatusOK)
				if alice.sid == was {
					t.Fatalf("%s gave no new ID", rotation)
				}
				if got := sessionOf(t, s, "sid="+alice.sid); got["user"] != "alice" {
					t.Fatalf("after %s the session is %v, want alice's", rotation, got)
				}
				ws.echoes()
			}
			expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
			ws.closes(app)
		})
	}
}

// TestTunnelKeepsAliveASessionSealedUnderIt: a reload turns seal_values
// on while a WebSocket is open (stream_close_delay keeps the previous
// config's tunnels), and the user's next page seals the session in place.
// The tunnel, checked by the previous config's handler, which derived no
// key at the handshake, could no longer open its session: it closed at
// its next check, the session alive. Now it stays open and keeps the
// session alive under idle_timeout, over twice idle_timeout of nothing
// but the tunnel; then the session still opens, and its logout closes
// the tunnel.
func TestTunnelKeepsAliveASessionSealedUnderIt(t *testing.T) {
	const idle, step, steps = time.Hour, 25 * time.Minute, 6
	app := &echoApp{closed: make(chan struct{}, 16)}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: t.TempDir() + "/sessions.db", up: &upstream{srv}}
	s.tester.Client.Jar = nil
	config := func(options string) string {
		return fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\tskip_install_trust\n}\nhttp://127.0.0.1:%d {\n\tsession {\n\t\tstore bolt %s\n\t\t%s\n\t\tidle_timeout %s\n\t\ttouch_interval 1m\n\t\ttunnels 5ms\n\t}\n\treverse_proxy %s {\n\t\tstream_close_delay 1h\n\t}\n}\n",
			adminPort, s.port, s.port, s.db, options, idle, s.up.addr())
	}
	checks := tunnelChecks(t)
	s.reload(config("# no seal_values"))
	alice := login(t, s, "alice")
	ws := openTunnel(t, alice)
	s.reload(config("seal_values"))
	expectStatus(t, alice.get("/", "X-Session-Set-Cart: pear"), http.StatusOK) // sealed in place
	for i := 1; i <= steps; i++ {
		clock.Advance(step)
		if c := checkedAt(t, checks, clock.Now()); c.Closed {
			t.Fatalf("after %s the tunnel was closed, its session alive", time.Duration(i)*step)
		}
	}
	ws.echoes()
	if got := sessionOf(t, s, "sid="+alice.sid); got["user"] != "alice" || got["cart"] != "pear" {
		t.Fatalf("after %s of an open tunnel the session is %v, want alice's with the pear", steps*step, got)
	}
	expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	ws.closes(app)
}
