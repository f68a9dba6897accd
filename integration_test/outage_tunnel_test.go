package integration_test

import (
	"net/http"
	"path/filepath"
	"testing"
)

// TestOutageTunnelOpenedFromTheCopyClosesWhenItsSessionEnds: while the
// store is down, on_store_error stale serves a WebSocket handshake, or an
// event stream, from this Caddy's copy of the session: the app opens it as
// the session's user. README: a tunnel "opened by a request that carried a
// live session ... is closed ... once that session ends", and "A check
// that cannot read the store keeps the tunnel open until the next". A
// tunnel or stream opened from the copy was never watched: once the store
// was back, a logout, a revocation, a login of another user on the session
// left it open, acting as the user for as long as the connection lasted.
// The outage is the faulty store's; the check interval is an hour, so
// only the prompt close an end sets off can close these.
func TestOutageTunnelOpenedFromTheCopyClosesWhenItsSessionEnds(t *testing.T) {
	for _, tt := range sessionEnds {
		t.Run(tt.name, func(t *testing.T) {
			options := tt.options
			if options != "tunnels keep" {
				options += "\n\t\ttunnels 1h"
			}
			options = "idle_timeout 2h\n\t\ton_store_error stale 5m\n\t\t" + options
			t.Run("websocket", func(t *testing.T) {
				t.Cleanup(func() { failReads.Store(false) })
				s, app := newTunnelSite(t, "store faulty "+filepath.Join(t.TempDir(), "sessions.db"), options)
				alice := login(t, s, "alice")
				failReads.Store(true)
				ws := openTunnel(t, alice)
				failReads.Store(false)
				tt.end(t, s, alice)
				if !tt.keeps {
					ws.closes(app)
					return
				}
				ws.echoes()
				if tt.options == "tunnels keep" {
					return
				}
				expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
				ws.closes(app)
			})
			t.Run("event stream", func(t *testing.T) {
				t.Cleanup(func() { failReads.Store(false) })
				s, app := newStreamSite(t, "store faulty "+filepath.Join(t.TempDir(), "sessions.db"), options)
				alice := login(t, s, "alice")
				failReads.Store(true)
				st := startStream(t, alice, app, "events")
				failReads.Store(false)
				tt.end(t, s, alice)
				if !tt.keeps {
					st.closes()
					return
				}
				st.flows("still yours")
				if tt.options == "tunnels keep" {
					return
				}
				expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
				st.closes()
			})
		})
	}
}
