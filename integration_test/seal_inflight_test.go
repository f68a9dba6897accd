package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestSealToggledWhileARequestIsInFlight ("turned on" rows): a request that a
// handler without seal_values loaded (a plain session, so it derived no
// seal key) is still in flight when seal_values is turned on (a reload,
// or another instance of the store with the new config), and another tab
// renews the session meanwhile: the successor is sealed under the new
// ID, and the forward record carries its key sealed under the old ID,
// which the request holds. Whatever the request's response does to the
// session, it must reach the successor, as it does when sealing was on
// all along (TestSealRequestInFlightAcrossARenewal), not fail with a 503
// and lose the change, the touch or the flash values it took; nor may a
// logout everywhere or a revocation take the sealed successor for another
// user's session and be dropped. The "turned off" rows are the other way
// round: a request that a handler with seal_values loaded, across a
// renewal by one without it, whose successor is plain.
func TestSealToggledWhileARequestIsInFlight(t *testing.T) {
	var phone *visitor // another device of the user, for a revocation
	rows := []struct {
		name     string
		before   func(t *testing.T, v *visitor) []string // before the request starts; more commands
		headers  []string                                // of the request in flight
		commands []string                                // its response's
		check    func(t *testing.T, s *site, v *visitor, res *http.Response)
	}{
		{name: "a change", commands: []string{"X-Session-Set-Theme: dark"},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				expectStatus200(t, res)
				want := map[string]string{"user": "alice", "cart": "apple", "theme": "dark"}
				if got := sessionWith(t, s, v.sid); !mapsEqual(got, want) {
					t.Fatalf("the renewed session is %v, want %v: the change of the request in flight was lost", got, want)
				}
			}},
		{name: "a renewal", commands: []string{"X-Session-Renew: true", "X-Session-Set-Theme: dark"},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				expectStatus200(t, res)
				c := sidCookie(res)
				if c == nil || c.Value == "" || c.Value == v.sid {
					t.Fatalf("the renewal in flight issued no new ID (cookie %v)", c)
				}
				want := map[string]string{"user": "alice", "cart": "apple", "theme": "dark"}
				if got := sessionWith(t, s, c.Value); !mapsEqual(got, want) {
					t.Fatalf("the session renewed in flight is %v, want %v", got, want)
				}
			}},
		{name: "a logout", commands: []string{"X-Session-Destroy: true"},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				expectStatus200(t, res)
				if got := sessionWith(t, s, v.sid); len(got) != 0 {
					t.Fatalf("the logout in flight left the renewed session %v", got)
				}
			}},
		{name: "a logout everywhere", commands: []string{"X-Session-Destroy-All: true"},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				expectStatus200(t, res)
				if got := sessionWith(t, s, v.sid); len(got) != 0 {
					t.Fatalf("the logout everywhere in flight left the renewed session %v", got)
				}
			}},
		{name: "a revocation of another device",
			before: func(t *testing.T, v *visitor) []string {
				phone = login(t, v.site, "alice")
				return []string{"X-Session-Revoke: " + phone.shortHash()}
			},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				expectStatus200(t, res)
				expectUser(t, phone, "")
				expectUser(t, v, "alice")
			}},
		{name: "a touch",
			before: func(t *testing.T, v *visitor) []string {
				clock.Advance(2 * time.Minute) // past touch_interval
				t.Cleanup(func() { clock.Advance(-2 * time.Minute) })
				return nil
			},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				expectStatus200(t, res)
				expectUser(t, v, "alice")
			}},
		{name: "flash values of a failed response",
			before: func(t *testing.T, v *visitor) []string {
				expectStatus(t, v.get("/save", "X-Session-Flash-Notice: Saved"), http.StatusOK)
				return nil
			},
			headers: []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html", "Test-Status", "500"},
			check: func(t *testing.T, s *site, v *visitor, res *http.Response) {
				if res.StatusCode != http.StatusInternalServerError {
					t.Fatalf("the failed response is %d, want the app's 500", res.StatusCode)
				}
				expectFlashes(t, v.navigate(http.MethodGet, "/next"), saved)
			}},
	}
	stores := []struct{ name, seal string }{
		{name: "bolt", seal: "seal_values"},
		{name: "redis", seal: "seal_values {\n\t\t\tindex_key " + sealIndexKey + "\n\t\t}"},
	}
	for _, st := range stores {
		for _, on := range []bool{true, false} {
			name := st.name + "/turned on"
			if !on {
				name = st.name + "/turned off"
			}
			t.Run(name, func(t *testing.T) {
				for _, row := range rows {
					t.Run(row.name, func(t *testing.T) {
						storeLine := ""
						if st.name == "redis" {
							storeLine = "store redis " + redistest.Start(t).URL()
						}
						before, after := "", st.seal
						if !on {
							before, after = st.seal, ""
						}
						s, g := gatedSite(t, func(t *testing.T, options string) *site { return newSiteWith(t, storeLine, "", before) })
						v := login(t, s, "alice")
						commands := row.commands
						if row.before != nil {
							commands = append(commands, row.before(t, v)...)
						}
						old := v.sid
						slow := v.startWith(g, "slow", row.headers, commands...)
						s.options = after
						s.load()
						// Not a navigation: it takes no flash value.
						expectStatus(t, v.do(http.MethodGet, "/", "Test-Header", "X-Session-Renew: true"), http.StatusOK)
						if v.sid == old {
							t.Fatal("the renewal kept the ID")
						}
						row.check(t, s, v, slow.finish(t))
					})
				}
			})
		}
	}
}

func expectStatus200(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the request in flight across the renewal got %d, want 200: its session lives on under the new ID", res.StatusCode)
	}
}
