package integration_test

import (
	"net/http"
	"testing"
)

// TestFlashTakenInFlightAcrossAnEnd: a navigation takes alice's flash
// value and is held at the app while another tab or the operator ends or
// moves the session; then the app answers it, well (the value is used
// up) or with a 500 (it is put back, README "Flash values"). A value put
// back never lands in a session that ended meanwhile, nor in the one a
// logout started with its own goodbye, nor reaches alice again after a
// revocation and a new login; across a renewal it is put back once, or
// used up once, never handed twice.
func TestFlashTakenInFlightAcrossAnEnd(t *testing.T) {
	bye := map[string]string{"X-Session-Flash-Notice": "bye"}
	cases := []struct {
		name   string
		status string
		// meanwhile is what happens while the navigation is held; it
		// returns the visitor whose next navigations are checked.
		meanwhile func(t *testing.T, s *site, v, phone *visitor) *visitor
		want      map[string]string // the flash values of the next navigation
	}{
		{"a logout", "500", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			v.get("/logout", "X-Session-Destroy: true")
			return v
		}, map[string]string{}},
		{"a logout with a goodbye", "500", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			v.get("/logout", "X-Session-Destroy: true", "X-Session-Flash-Notice: bye")
			return v
		}, bye},
		{"a logout everywhere from the phone", "500", func(t *testing.T, s *site, v, phone *visitor) *visitor {
			phone.get("/logout", "X-Session-Destroy-All: true")
			return v
		}, map[string]string{}},
		{"a revocation of the user, and a new login", "500", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			revokeAlice(t)
			return login(t, s, "alice")
		}, map[string]string{}},
		{"a renewal, answered well", "200", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			v.get("/settings", "X-Session-Renew: true")
			return v
		}, map[string]string{}},
		{"a renewal, answered with a 500", "500", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			v.get("/settings", "X-Session-Renew: true")
			return v
		}, saved},
		{"remembered, answered well", "200", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			v.get("/settings", "X-Session-Remember: true")
			return v
		}, map[string]string{}},
		{"remembered, answered with a 500", "500", func(t *testing.T, s *site, v, _ *visitor) *visitor {
			v.get("/settings", "X-Session-Remember: true")
			return v
		}, saved},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
				s, g := gatedSite(t, newSite)
				s.options = rememberOpts
				s.load()
				v := login(t, s, "alice")
				phone := login(t, s, "alice")
				v.get("/save", "X-Session-Flash-Notice: Saved")
				held := v.startWith(g, "nav", []string{"Sec-Fetch-Mode", "navigate", "Test-Status", tc.status})
				next := tc.meanwhile(t, s, v, phone)
				res := held.finish(t)
				expectNoCookie(t, res, "a navigation that only took a flash value")
				expectFlashes(t, next.navigate(http.MethodGet, "/"), tc.want)
				expectFlashes(t, next.navigate(http.MethodGet, "/"), map[string]string{})
			})
		})
	}
}

// TestRememberInFlightAcrossARevocation: a "remember me" answered while
// the user's sessions were ended (the operator's revocation after a
// password reset, a logout everywhere from another device) must not bring
// the session back under a persistent cookie: no cookie, and no session
// of alice's left but those the operator did not end.
func TestRememberInFlightAcrossARevocation(t *testing.T) {
	cases := []struct {
		name      string
		commands  []string
		meanwhile func(t *testing.T, v, phone *visitor)
		phone     string // the user the phone's session still has: only one session revoked
	}{
		{"remember across a revocation of the user", []string{"X-Session-Remember: true"}, func(t *testing.T, _, _ *visitor) {
			revokeAlice(t)
		}, ""},
		{"remember with a key across a revocation of the session", []string{"X-Session-Remember: true", "X-Session-Set-Theme: dark"}, func(t *testing.T, v, _ *visitor) {
			if n := revokeByHash(t, "sid="+v.sid); n != 1 {
				t.Fatalf("the admin API revoked %d sessions, want the laptop's", n)
			}
		}, "alice"},
		{"remember across a logout everywhere from the phone", []string{"X-Session-Remember: true"}, func(t *testing.T, _, phone *visitor) {
			phone.get("/logout", "X-Session-Destroy-All: true")
		}, ""},
		{"a remembered login again across a revocation", []string{"X-Session-Set-User: alice", "X-Session-Remember: true"}, func(t *testing.T, _, _ *visitor) {
			revokeAlice(t)
		}, ""},
		{"a renewal of a remembered session across a revocation", []string{"X-Session-Renew: true"}, func(t *testing.T, v, _ *visitor) {
			revokeAlice(t)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
				s, g := gatedSite(t, newSite)
				s.options = rememberOpts
				s.load()
				v := s.visitor()
				expectStatus(t, v.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true"), http.StatusOK)
				phone := login(t, s, "alice")
				slow := v.start(g, "slow", tc.commands...)
				tc.meanwhile(t, v, phone)
				res := slow.finish(t)
				expectNoCookie(t, res, "a request in flight across the end of every session of its user")
				expectUser(t, v, "")
				expectUser(t, phone, tc.phone)
				want := 0
				if tc.phone != "" {
					want = 1
				}
				if n := countSessions(t); n != want {
					t.Fatalf("%d sessions stored after the laptop's was ended, want %d", n, want)
				}
			})
		})
	}
}

// revokeAlice revokes alice's sessions through the admin API, as after a
// password reset, and checks that it found some.
func revokeAlice(t *testing.T) {
	t.Helper()
	var got struct{ Revoked int }
	sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &got)
	if got.Revoked == 0 {
		t.Fatal("the admin API revoked none of alice's sessions, want all of them")
	}
}
