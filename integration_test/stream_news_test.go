package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// TestOpenStreamCheckedOnRedisNews: an open stream or tunnel whose
// session Redis says changed (client tracking: another instance's write
// of its key, here deleted behind Caddy's back as another instance's
// logout does) is checked at once, through the cache the news kept
// right; before, only its periodic check found an end on another
// instance, an hour here. A change that ends nothing (a write of another
// key, on another tab) leaves it open.
func TestOpenStreamCheckedOnRedisNews(t *testing.T) {
	ends := []struct {
		name      string
		meanwhile func(t *testing.T, srv *redistest.Server, alice *visitor)
		ended     bool
	}{
		{"deleted behind Caddy's back", func(t *testing.T, srv *redistest.Server, alice *visitor) {
			// The store's key of the session, under the default key_prefix.
			if n, err := srv.Do("DEL", "caddy-session:{"+session.HashID(alice.sid).String()+"}"); err != nil || n != ":1" {
				t.Fatalf("deleting the session's key: %q, %v", n, err)
			}
		}, true},
		{"a write of another key", func(t *testing.T, _ *redistest.Server, alice *visitor) {
			expectStatus(t, alice.clone().get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
		}, false},
	}
	waitTold := func(t *testing.T, told <-chan struct{}) {
		t.Helper()
		select {
		case <-told:
		case <-time.After(10 * time.Second):
			t.Fatal("redis never told this process that the session's key changed")
		}
	}
	for _, end := range ends {
		t.Run("stream, "+end.name, func(t *testing.T) {
			srv := redistest.Start(t)
			s, app := newStreamSite(t, "store redis "+srv.URL(), "idle_timeout 2h\n\t\ttunnels 1h")
			alice := login(t, s, "alice")
			st := startStream(t, alice, app, "events")
			told := redisToldOf(t, session.HashID(alice.sid).String())
			end.meanwhile(t, srv, alice)
			waitTold(t, told)
			if end.ended {
				st.closes()
				return
			}
			st.flows("still yours")
		})
		t.Run("websocket, "+end.name, func(t *testing.T) {
			srv := redistest.Start(t)
			s, app := newTunnelSite(t, "store redis "+srv.URL(), "idle_timeout 2h\n\t\ttunnels 1h")
			alice := login(t, s, "alice")
			ws := openTunnel(t, alice)
			ws.echoes()
			told := redisToldOf(t, session.HashID(alice.sid).String())
			end.meanwhile(t, srv, alice)
			waitTold(t, told)
			if end.ended {
				ws.closes(app)
				return
			}
			ws.echoes()
		})
	}
}
