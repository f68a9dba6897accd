package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"

	"github.com/caddy-session/caddy-session/session"
)

// TestEventsOfARequestInFlightAcrossARenewal: a request that loaded the
// session, and whose command reached the renewed session through the
// forward record a renewal left meanwhile (README, "Requests in flight"),
// ends or renews that renewed session. Its events name the session the
// store acted on, the one an app keeping state per session was last told
// of (by the renewal's session.renewed), not the ID the request
// presented, which the renewal had already replaced: an app that clears
// its state by the event's hash would otherwise never clear the
// successor's.
func TestEventsOfARequestInFlightAcrossARenewal(t *testing.T) {
	type want = map[string]any
	rows := []struct {
		name     string
		commands []string
		// events are what the in-flight request emits, given the short
		// hash of the renewed session and of the ID its response issued
		// ("" if none).
		events func(renewed, issued string) []want
		// remembered: alice's session is remembered and has outlived the
		// normal timeouts when the request loads it.
		remembered bool
	}{
		{"a logout", []string{"X-Session-Destroy: true"}, func(renewed, _ string) []want {
			return []want{{"name": "session.destroyed", "session": renewed, "identity": "alice", "cause": "logout", "sessions": 1.0}}
		}, false},
		{"a logout that keeps a cart", []string{"X-Session-Destroy: true", "X-Session-Set-Cart: pear"}, func(renewed, issued string) []want {
			return []want{
				{"name": "session.destroyed", "session": renewed, "identity": "alice", "cause": "logout", "sessions": 1.0},
				{"name": "session.created", "session": issued},
			}
		}, false},
		{"a renewal", []string{"X-Session-Renew: true"}, func(renewed, issued string) []want {
			return []want{{"name": "session.renewed", "session": issued, "previous": renewed, "identity": "alice", "identity_changed": false}}
		}, false},
		{"a logout everywhere", []string{"X-Session-Destroy-All: true"}, func(renewed, _ string) []want {
			return []want{{"name": "session.destroyed", "session": renewed, "identity": "alice", "cause": "logout_all", "sessions": 1.0}}
		}, false},
		{"a return to timeouts outlived", []string{"X-Session-Remember: false"}, func(renewed, _ string) []want {
			return []want{{"name": "session.destroyed", "session": renewed, "identity": "alice", "cause": "expired", "sessions": 1.0}}
		}, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				options := ""
				if row.remembered {
					options = rememberOpts
				}
				s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, options) })
				s.globals = sessionEvents
				s.load()
				v := login(t, s, "alice")
				if row.remembered {
					expectStatus(t, v.get("/settings", "X-Session-Remember: true"), http.StatusOK)
					clock.Advance(50 * time.Minute)
					expectStatus(t, v.get("/"), http.StatusOK)
					clock.Advance(20 * time.Minute) // past absolute_timeout, within the remembered ones
				}
				slow := v.start(g, "slow", row.commands...)
				expectStatus(t, v.get("/renew", "X-Session-Renew: true"), http.StatusOK)
				renewed := session.HashID(v.sid).Short()
				takeEvents()

				res := slow.finish(t)
				expectStatus(t, &response{Response: res}, http.StatusOK)
				issued := ""
				if c := sidCookie(res); c != nil && c.MaxAge >= 0 {
					issued = session.HashID(c.Value).Short()
				}
				expectEvents(t, s, takeEvents(), row.events(renewed, issued))
			})
		})
	}
}

// expectEvents checks that got are the events want, each with the data
// common to the site's events besides its own.
func expectEvents(t *testing.T, s *site, got []recordedEvent, want []map[string]any) {
	t.Helper()
	var stores []apiStore
	sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
	if len(stores) != 1 {
		t.Fatalf("stores %+v, want one", stores)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		wantData := map[string]any{"store": stores[0].Name, "backend": stores[0].Backend, "realm": "127.0.0.1@" + portOf(s)}
		for k, v := range want[i] {
			if k != "name" {
				wantData[k] = v
			}
		}
		if data := e.data(t); e.name != want[i]["name"] || !jsonEqual(data, wantData) {
			t.Errorf("event %d is %s %s\nwant %s %s", i, e.name, e.raw, want[i]["name"], mustJSON(wantData))
		}
	}
}

// TestAdminRevocationOfARenewedSessionNamesItsSuccessor: the admin API's
// revocation of a session by the hash it was listed under, after its
// browser renewed it, ends the session it became (README, "Admin API");
// the event names that one, the session the app was last told of, and
// whose it is, which the forward record left under the listed hash does
// not say.
func TestAdminRevocationOfARenewedSessionNamesItsSuccessor(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		s.globals = sessionEvents
		s.load()
		v := login(t, s, "alice")
		listed := v.adminHash()
		expectStatus(t, v.get("/renew", "X-Session-Renew: true"), http.StatusOK)
		renewed := session.HashID(v.sid).Short()
		takeEvents()
		a := sessionAPI(t, http.MethodDelete, "/session/sessions/"+listed, "")
		if a.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", a.status, a.body)
		}
		expectUser(t, v, "")
		expectEvents(t, s, takeEvents(), []map[string]any{
			{"name": "session.destroyed", "session": renewed, "identity": "alice", "cause": "admin", "sessions": 1.0},
		})
	})
}
