package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/session"
)

// TestTunnelOfThePreviousStoreClosesWhenItsSessionEnds: a
// WebSocket opened under a config whose store is about to be left
// (README, "Moving to another store"), kept open across the reload that
// adds fallback_store by reverse_proxy's stream_close_delay, is checked by
// its own config's handler, which reads the old store. An end committed
// under the new config must close it at once, as every end this process
// commits closes its tunnels. The end told the tunnels as soon as the new
// store had committed it, before the relay ended the session in the old
// store, so the check found the session still live there and left the
// tunnel open until its periodic check: an hour here.
func TestTunnelOfThePreviousStoreClosesWhenItsSessionEnds(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, s *site, alice *visitor)
	}{
		{"logout", func(t *testing.T, s *site, alice *visitor) {
			expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}},
		{"destroy-all from another device", func(t *testing.T, s *site, alice *visitor) {
			other := login(t, s, "alice")
			expectStatus(t, other.get("/reset", "X-Session-Destroy-All: true"), http.StatusOK)
		}},
		{"another user's login on the session", func(t *testing.T, s *site, alice *visitor) {
			expectStatus(t, alice.get("/login", "X-Session-Set-User: bob"), http.StatusOK)
		}},
		{"admin revocation of the session", func(t *testing.T, s *site, alice *visitor) {
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(alice.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
		}},
		{"admin revocation of the user", func(t *testing.T, s *site, alice *visitor) {
			var revoked struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &revoked)
			if revoked.Revoked != 1 {
				t.Fatalf("revoked %d sessions, want 1", revoked.Revoked)
			}
		}},
	}
	for _, tc := range ends {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldDB, newDB := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
			app := &echoApp{closed: make(chan struct{}, 16)}
			srv := httptest.NewServer(app)
			t.Cleanup(srv.Close)
			s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: &upstream{srv}}
			s.tester.Client.Jar = nil
			config := func(stores string) string {
				return fmt.Sprintf("{\n\tadmin localhost:%d\n\tskip_install_trust\n}\nhttp://127.0.0.1:%d {\n\tsession {\n\t\t%s\n\t\tidle_timeout 2h\n\t\ttunnels 1h\n\t}\n\treverse_proxy %s {\n\t\tstream_close_delay 1h\n\t}\n}\n",
					adminPort, s.port, stores, srv.Listener.Addr())
			}
			s.reload(config("store bolt " + oldDB))
			alice := login(t, s, "alice")
			ws := openTunnel(t, alice) // under the config of the old store alone

			s.reload(config("store bolt " + newDB + "\n\t\tfallback_store bolt " + oldDB))
			ws.echoes() // stream_close_delay kept it
			tc.end(t, s, alice)
			ws.closes(app)
		})
	}
}
