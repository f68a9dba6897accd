package integration_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// TestOutageCopyAcrossTimeAndEnds: what on_store_error stale 30m serves,
// while the faulty store's reads fail, to a session read into the copy
// before, as time passes and ends meet it. README: the copy is served
// "within the duration"; a session "this Caddy saw end ... is never
// served from it"; nor one its timeouts have ended. The site's
// idle_timeout is 10m, its absolute_timeout 1h, a remembered session's
// 2h and 3h.
func TestOutageCopyAcrossTimeAndEnds(t *testing.T) {
	cases := []struct {
		name     string
		remember bool
		// before runs before the outage, during runs during it (the
		// store's writes and deletes still work: only reads fail).
		before, during func(t *testing.T, s *site, alice *visitor)
		age            time.Duration
		want           int
	}{
		{name: "within every bound", age: 9 * time.Minute, want: http.StatusOK},
		{name: "idle past idle_timeout", age: 11 * time.Minute, want: http.StatusServiceUnavailable},
		{name: "remembered, idle past the site's idle_timeout only", remember: true, age: 11 * time.Minute, want: http.StatusOK},
		{name: "past the duration", remember: true, age: 31 * time.Minute, want: http.StatusServiceUnavailable},
		{name: "past absolute_timeout though used", age: 61 * time.Minute, want: http.StatusServiceUnavailable,
			before: func(t *testing.T, s *site, alice *visitor) {
				// Used every 9 minutes for 54 minutes: the copy is fresh,
				// the session's absolute deadline is 6 minutes away.
				for i := 0; i < 6; i++ {
					clock.Advance(9 * time.Minute)
					t.Cleanup(func() { clock.Advance(-9 * time.Minute) })
					outageUser(t, alice.get("/"), "alice")
				}
			}},
		{name: "revoked through the admin API just before", age: time.Minute, want: http.StatusServiceUnavailable,
			before: func(t *testing.T, s *site, alice *visitor) {
				sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &struct{ Revoked int }{})
			}},
		{name: "revoked through the admin API during", age: time.Minute, want: http.StatusServiceUnavailable,
			during: func(t *testing.T, s *site, alice *visitor) {
				sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &struct{ Revoked int }{})
			}},
		{name: "its session revoked through the admin API during", age: time.Minute, want: http.StatusServiceUnavailable,
			during: func(t *testing.T, s *site, alice *visitor) {
				sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(alice.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
			}},
		{name: "another user's session revoked during", age: time.Minute, want: http.StatusOK,
			during: func(t *testing.T, s *site, alice *visitor) {
				sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "bob"}`).decode(t, http.StatusOK, &struct{ Revoked int }{})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { failReads.Store(false); failWrites.Store(false) })
			s := newSiteWith(t, "store faulty "+filepath.Join(t.TempDir(), "sessions.db"), "",
				"idle_timeout 10m\n\t\tabsolute_timeout 1h\n\t\ttouch_interval 1m\n\t\tremember {\n\t\t\tidle_timeout 2h\n\t\t\tabsolute_timeout 3h\n\t\t}\n\t\ton_store_error stale 30m")
			alice := s.visitor()
			login := []string{"X-Session-Set-User: alice"}
			if tc.remember {
				login = append(login, "X-Session-Remember: true")
			}
			expectStatus(t, alice.get("/login", login...), http.StatusOK)
			outageUser(t, alice.get("/"), "alice")
			if tc.before != nil {
				tc.before(t, s, alice)
			}
			failReads.Store(true)
			if tc.during != nil {
				tc.during(t, s, alice)
			}
			clock.Advance(tc.age)
			t.Cleanup(func() { clock.Advance(-tc.age) })
			r := alice.get("/")
			if r.StatusCode != tc.want {
				t.Fatalf("the copy read %v before, while the store is down: status %d, want %d; the app got %v", tc.age, r.StatusCode, tc.want, r.session())
			}
			if tc.want != http.StatusOK {
				if len(r.session()) != 0 {
					t.Fatalf("a 503 forwarded the session: %v", r.session())
				}
				return
			}
			outageUser(t, r, "alice")
			if len(r.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("a read from the copy set a cookie: %q", r.Header.Values("Set-Cookie"))
			}
		})
	}
}

// outageUser fails unless the app got the session of user.
func outageUser(t *testing.T, r *response, user string) {
	t.Helper()
	if got := r.session()["X-Session-User"]; r.StatusCode != http.StatusOK || got != user {
		t.Fatalf("status %d, the app got user %q, want 200 and %q", r.StatusCode, got, user)
	}
}
