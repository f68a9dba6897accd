package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// TestTouchPendingWhenTheSessionEnds: a bolt touch is answered at once
// and written with the next commit (README, "Stores": a touch never
// brings back a session that was ended, revoked or rotated meanwhile).
// Each way a session ends, or leaves its ID behind, comes right after a
// touch of it, and the touch is then written (by another user's login,
// a commit of the file); neither the next request nor the file, as a
// restart would open it, has the session under that ID again.
func TestTouchPendingWhenTheSessionEnds(t *testing.T) {
	timeouts := session.Timeouts{Idle: 10 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	cases := []struct {
		name string
		end  func(t *testing.T, touched, other *visitor)
	}{
		{"logout", func(t *testing.T, touched, _ *visitor) {
			expectStatus(t, touched.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}},
		{"logout everywhere from another session", func(t *testing.T, _, other *visitor) {
			expectStatus(t, other.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
		}},
		{"revoked by the admin API by hash", func(t *testing.T, touched, _ *visitor) {
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+touched.adminHash(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
		}},
		{"revoked by the admin API by user", func(t *testing.T, _, _ *visitor) {
			var got struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &got)
			if got.Revoked != 2 {
				t.Fatalf("revoked %d sessions of alice, want 2", got.Revoked)
			}
		}},
		{"revoked from another session (X-Session-Revoke)", func(t *testing.T, touched, other *visitor) {
			expectStatus(t, other.get("/account/devices", "X-Session-Revoke: "+touched.shortHash()), http.StatusOK)
		}},
		{"renewed: the old ID", func(t *testing.T, touched, _ *visitor) {
			old := *touched
			expectStatus(t, touched.get("/", "X-Session-Renew: true"), http.StatusOK)
			if touched.sid == old.sid {
				t.Fatal("the renewal issued no new ID")
			}
			*touched = old // the old ID is the one that must not open
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSite(t, "idle_timeout 10m\n\t\ttouch_interval 1m\n\t\tdevices /account/devices")
			touched, other := login(t, s, "alice"), login(t, s, "alice")
			clock.Advance(5 * time.Minute)
			expectUser(t, touched, "alice") // a touch 5 minutes from the idle deadline: deferred
			expectUser(t, other, "alice")
			c.end(t, touched, other)
			login(t, s, "bob") // a commit of the file, which writes what is pending
			// A renewal leaves a forward record under the old ID, which is no
			// session (it opens nothing, and ends in two minutes).
			if rec := afterCrash(t, s, touched, timeouts); rec != nil && !rec.Forwarded() {
				t.Fatalf("the file holds the session again after its pending touch was written: last seen %v, keys %v", rec.LastSeen, rec.Values)
			}
			expectUser(t, touched, "")
		})
	}
}
