package integration_test

import (
	"net/http"
	"testing"
)

// TestLogoutEverywhereInFlightAcrossTheEndOfItsSession: a request whose
// session ended while it was in flight (a logout, a revocation), or whose
// browser logged in as another user meanwhile, has its commands dropped
// (README, "Requests in flight"), X-Session-Destroy-All among them: it
// must not end the user's sessions that started since, nor those of the
// user the browser no longer is, and the keys beside it start no session.
// Otherwise a session revoked for a password reset could, from a request
// it had started before, log the user out of the sessions they logged in
// with afterwards.
func TestLogoutEverywhereInFlightAcrossTheEndOfItsSession(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, v *visitor) // nil: the session lives on
	}{
		{"no end", nil},
		{"a logout", func(t *testing.T, v *visitor) {
			expectStatus(t, v.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}},
		{"an admin revocation", func(t *testing.T, v *visitor) {
			a := sessionAPI(t, http.MethodDelete, "/session/sessions/"+v.adminHash(), "")
			if a.status != http.StatusOK {
				t.Fatalf("revoke: %d %s", a.status, a.body)
			}
		}},
		{"a login as another user", func(t *testing.T, v *visitor) {
			expectStatus(t, v.get("/login", "X-Session-Set-User: bob"), http.StatusOK)
		}},
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, newSite)
				laptop := login(t, s, "alice")
				slow := laptop.start(g, "slow", "X-Session-Destroy-All: true", "X-Session-Flash-Notice: bye")
				if end.end != nil {
					end.end(t, laptop)
				}
				phone := login(t, s, "alice") // after the end
				res := slow.finish(t)
				expectStatus(t, &response{Response: res}, http.StatusOK)
				if end.end == nil {
					// The control: a live session's logout everywhere ends
					// the phone's, and the flash starts a session.
					if c := sidCookie(res); c == nil || c.MaxAge < 0 {
						t.Fatalf("the logout everywhere with a flash issued no session: %v", c)
					}
					expectUser(t, phone, "")
					return
				}
				expectNoCookie(t, res, "a logout everywhere in flight across the end of its session")
				expectUser(t, phone, "alice")
			})
		})
	}
}

// TestSealedLogoutEverywhere: X-Session-Destroy-All checks that the
// request's session is still the user's (see above) on sessions sealed at
// rest too, whose identity only the index tag, or the ID's key, reads:
// with sealing on, it ends the user's sessions; with sealing turned off
// since they were sealed (they stay sealed until written), it still ends
// the request's own, and is not taken for one made another user's.
func TestSealedLogoutEverywhere(t *testing.T) {
	for _, off := range []bool{false, true} {
		name := "sealing on"
		if off {
			name = "sealing turned off since"
		}
		t.Run(name, func(t *testing.T) {
			onEachSealedStore(t, "", "", func(t *testing.T, s sealedSite) {
				s.options = s.sealOptions
				s.load()
				phone, laptop := login(t, s.site, "alice"), login(t, s.site, "alice")
				if off {
					s.options = ""
					s.load()
				}
				sid := laptop.sid
				expectStatus(t, laptop.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
				if laptop.sid != "" {
					t.Fatal("the logout everywhere did not expire the cookie")
				}
				expectUser(t, &visitor{site: s.site, sid: sid}, "")
				if !off {
					expectUser(t, phone, "")
				}
			})
		})
	}
}
