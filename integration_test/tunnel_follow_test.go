package integration_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// TestTunnelSeesAnEndWhileItFollowsARenewal: a renewal of the tunnel's
// session has the tunnel checked, which follows the session to its new ID
// and moves the tunnel there. An end of the new session committed while
// the check was on its way looked for the tunnel under the new ID, found
// it still under the old one, and closed nothing: the tunnel stayed open
// until its periodic check (an hour here). The hook holds the check after
// it has followed the renewal, the test revokes the new session through
// the admin API, by its new hash, and the check, let go, must see that
// end and close the tunnel.
func TestTunnelSeesAnEndWhileItFollowsARenewal(t *testing.T) {
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			s, app := newTunnelSite(t, store, "idle_timeout 2h\n\t\ttunnels 1h")
			alice := login(t, s, "alice")
			ws := openTunnel(t, alice)
			ws.echoes()
			old := session.HashID(alice.sid).String()

			reached, let := make(chan struct{}), make(chan struct{})
			var once, unblock sync.Once
			release := func() { unblock.Do(func() { close(let) }) }
			f := func() { once.Do(func() { close(reached); <-let }) }
			testhook.TunnelFollowed.Store(&f)
			t.Cleanup(func() { testhook.TunnelFollowed.Store(nil); release() })

			renewed, sent := make(chan *response, 1), make(chan struct{})
			go func() {
				defer close(sent)
				renewed <- alice.get("/", "X-Session-Renew: true")
			}()
			// The renewal ends before the test does, failed or not: a
			// request that fails once the test is over panics the binary.
			t.Cleanup(func() { release(); <-sent })
			select {
			case <-reached:
			case <-time.After(10 * time.Second):
				t.Fatal("no check of the tunnel followed the renewal")
			}
			// The renewal is committed: the old hash leads to the new
			// session, which is revoked under its own hash, where the
			// tunnel is not yet.
			var renewedSession map[string]any
			sessionAPI(t, http.MethodGet, "/session/sessions/"+old, "").decode(t, http.StatusOK, &renewedSession)
			hash, _ := renewedSession["hash"].(string)
			if hash == "" || hash == old {
				t.Fatalf("the admin API shows the renewed session under %q, want its new hash", hash)
			}
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+hash, "").decode(t, http.StatusOK, &struct{ Revoked int }{})
			release()
			expectStatus(t, <-renewed, http.StatusOK)
			ws.closes(app)
		})
	}
}
