package integration_test

import (
	"net/http"
	"testing"
)

// TestFlashSetInFlightAcrossARotation: a request that sets a flash value
// ("Saved") is held at the app while another tab renews the session or
// remembers it (a new ID, the old one forwarded). Its commit follows the
// forward record, and the user's next navigation, with the new cookie,
// shows the value once: it is not lost with the old ID.
func TestFlashSetInFlightAcrossARotation(t *testing.T) {
	for _, rotation := range []string{"X-Session-Renew: true", "X-Session-Remember: true"} {
		t.Run(rotation, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
				s, g := gatedSite(t, newSite)
				s.options = rememberOpts
				s.load()
				v := login(t, s, "alice")
				held := v.start(g, "save", "X-Session-Flash-Notice: Saved")
				before := v.sid
				v.get("/settings", rotation)
				if v.sid == "" || v.sid == before {
					t.Fatalf("the rotation sent no new ID")
				}
				if res := held.finish(t); res.StatusCode != http.StatusOK {
					t.Fatalf("the request in flight across the rotation was answered %d, want 200", res.StatusCode)
				}
				expectFlashes(t, v.navigate(http.MethodGet, "/"), saved)
				expectFlashes(t, v.navigate(http.MethodGet, "/"), map[string]string{})
			})
		})
	}
}
