package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// movingSites serves two sites of realm app through one gated upstream:
// staying and moving are the store lines of each (moving's with
// fallback_store during a move).
func movingSites(t *testing.T, staying, moving string) (onOld, onNew *site, g *gates) {
	t.Helper()
	return movingSitesOf(t, staying, "app", moving, "app")
}

// movingSitesOf is movingSites with the realm of each site.
func movingSitesOf(t *testing.T, staying, stayingRealm, moving, movingRealm string) (onOld, onNew *site, g *gates) {
	t.Helper()
	g = new(gates)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	t.Cleanup(g.openAll)
	up := &upstream{srv}
	onOld = &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up}
	onOld.tester.Client.Jar = nil
	onNew = &site{t: t, tester: onOld.tester, port: freePort(t), up: up}
	onOld.reload(fmt.Sprintf(`{
	admin localhost:%d
	skip_install_trust
}
http://127.0.0.1:%d {
	session {
		%s
		realm %s
	}
	reverse_proxy %s
}
http://127.0.0.1:%d {
	session {
		%s
		realm %s
	}
	reverse_proxy %s
}
`, adminPort, onOld.port, staying, stayingRealm, up.addr(), onNew.port, moving, movingRealm, up.addr()))
	return onOld, onNew, g
}

// movesOfTwoSites are the stores of two sites of one realm: first both on
// one store, the behaviour a move must keep; then during a move, one
// site still on the old store and one on the new store falling back to it.
var movesOfTwoSites = []struct {
	name string
	// stores returns the store lines of the site that stays on the old
	// store and of the site that moves.
	stores func(t *testing.T, dir string) (staying, moving string)
}{
	{"one store", func(t *testing.T, dir string) (string, string) {
		db := filepath.Join(dir, "old.db")
		return "store bolt " + db, "store bolt " + db
	}},
	{"bolt to bolt", func(t *testing.T, dir string) (string, string) {
		oldDB := filepath.Join(dir, "old.db")
		return "store bolt " + oldDB, "store bolt " + filepath.Join(dir, "new.db") + "\n\t\tfallback_store bolt " + oldDB
	}},
	{"bolt to redis", func(t *testing.T, dir string) (string, string) {
		oldDB := filepath.Join(dir, "old.db")
		return "store bolt " + oldDB, "store " + tempRedis(t) + "\n\t\tfallback_store bolt " + oldDB
	}},
	// Values sealed at rest: an update that follows a renewal opens the
	// successor with the key its forward record carries.
	{"one store, sealed", func(t *testing.T, dir string) (string, string) {
		db := filepath.Join(dir, "old.db")
		return "store bolt " + db + "\n\t\tseal_values", "store bolt " + db + "\n\t\tseal_values"
	}},
	{"bolt to bolt, sealed", func(t *testing.T, dir string) (string, string) {
		oldDB := filepath.Join(dir, "old.db")
		return "store bolt " + oldDB + "\n\t\tseal_values",
			"store bolt " + filepath.Join(dir, "new.db") + "\n\t\tfallback_store bolt " + oldDB + "\n\t\tseal_values"
	}},
}

// TestMoveRequestInFlightAcrossARenewalOnTheOldStore: one config, two
// sites of one realm during a move: one on the old store, one on the new
// store falling back to it. A request of the second, holding a session
// it copied, answers after the first renewed the session's ID in the old
// store (a renewal, remember-me). As in one store, the request follows
// the renewal: a write lands in the session renewed to, a touch is
// dropped, a renewal renews it and a logout ends it; nothing else ends
// it. Before, New held nothing under the old ID, and the request found
// the session ended and removed from the old store the session the
// renewal had made: the user was logged out of both sites by a request
// of theirs in flight, its answer withheld.
func TestMoveRequestInFlightAcrossARenewalOnTheOldStore(t *testing.T) {
	rotations := []struct {
		name     string
		commands []string
		want     map[string]string // what the rotation adds to the session
	}{
		{"renew", []string{"X-Session-Renew: true"}, nil},
		{"remember on", []string{"X-Session-Remember: true"}, map[string]string{"X-Session-Meta-Remembered": "true"}},
	}
	inFlight := []struct {
		name     string
		commands []string
		// want is the session the moving site opens with the cookie the
		// user holds afterwards, beside the user; nil if none.
		want map[string]string
		// ends: the request ends the session, and no cookie opens it.
		ends bool
		// renews: the request renews the session, and its cookie opens
		// it from then on.
		renews bool
	}{
		{name: "touch", want: map[string]string{"X-Session-Plan": "pro"}},
		{name: "set", commands: []string{"X-Session-Set-Cart: apple"},
			want: map[string]string{"X-Session-Plan": "pro", "X-Session-Cart": "apple"}},
		{name: "delete", commands: []string{"X-Session-Delete: plan"}, want: map[string]string{}},
		// One store keeps no flash value set by a request that followed a
		// renewal; neither does the move, but the session stands.
		{name: "flash", commands: []string{"X-Session-Flash-Notice: Saved"},
			want: map[string]string{"X-Session-Plan": "pro"}},
		{name: "renew", commands: []string{"X-Session-Renew: true"}, renews: true,
			want: map[string]string{"X-Session-Plan": "pro"}},
		{name: "destroy", commands: []string{"X-Session-Destroy: true"}, ends: true},
	}
	for _, move := range movesOfTwoSites {
		t.Run(move.name, func(t *testing.T) {
			for _, rot := range rotations {
				for _, tc := range inFlight {
					t.Run(rot.name+"/"+tc.name, func(t *testing.T) {
						dir, err := filepath.EvalSymlinks(t.TempDir())
						if err != nil {
							t.Fatal(err)
						}
						staying, moving := move.stores(t, dir)
						siteOld, siteNew, g := movingSites(t, staying, moving)
						onOld := siteOld.visitor()
						onOld.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Plan: pro")
						sid := onOld.sid
						expectUser(t, &visitor{site: siteNew, sid: sid}, "alice") // copied
						// Past touch_interval, so that the request touches.
						clock.Advance(90 * time.Second)
						held := (&visitor{site: siteNew, sid: sid}).start(g, "held", tc.commands...)
						onOld.get("/rotate", rot.commands...)
						if onOld.sid == "" || onOld.sid == sid {
							t.Fatalf("the %s sent cookie %q, want a new session", rot.name, onOld.sid)
						}
						renewed := onOld.sid
						res := held.finish(t)
						// A touch writes nothing, and its answer is judged
						// by a read of the new store alone (store.NoCopy),
						// which holds nothing under the old ID any more: it
						// may be withheld during a move, but must end
						// nothing.
						withheldTouch := tc.name == "touch" && !strings.HasPrefix(move.name, "one store") && res.StatusCode == http.StatusForbidden
						if res.StatusCode != http.StatusOK && !withheldTouch {
							t.Fatalf("the request in flight across the %s was answered %d, want 200", rot.name, res.StatusCode)
						}
						holds := renewed
						if c := sidCookie(res); tc.renews {
							if c == nil || c.MaxAge < 0 || c.Value == renewed || c.Value == sid {
								t.Fatalf("the renewal in flight sent cookie %v, want a new session", c)
							}
							holds = c.Value
						}

						if tc.ends {
							for _, s := range []*site{siteOld, siteNew} {
								for _, id := range []string{sid, renewed} {
									expectUser(t, &visitor{site: s, sid: id}, "")
								}
							}
							return
						}
						want := map[string]string{"X-Session-User": "alice"}
						for k, v := range rot.want {
							want[k] = v
						}
						for k, v := range tc.want {
							want[k] = v
						}
						expectSession(t, (&visitor{site: siteNew, sid: holds}).get("/look"), want)
						if !tc.renews {
							// The old store's site keeps the session its
							// renewal made (the move's writes go to the new
							// store only).
							expectUser(t, &visitor{site: siteOld, sid: renewed}, "alice")
						}
					})
				}
			}
		})
	}
}

// TestMoveRequestInFlightAcrossARenewalOfThePreviousConfig: one site,
// the reload that adds fallback_store. A request of the config before,
// in flight across the reload, renews the session in the old store after
// a request of the new config copied it, and while that one is in flight
// too. The second request follows the renewal as in one store, and ends
// nothing it does not end in one store: the cookie the renewal sent keeps
// opening the session.
func TestMoveRequestInFlightAcrossARenewalOfThePreviousConfig(t *testing.T) {
	cases := []struct {
		name     string
		commands []string
		want     map[string]string // beside the user; nil when it ends
		renews   bool
	}{
		{name: "touch", want: map[string]string{"X-Session-Plan": "pro"}},
		{name: "set", commands: []string{"X-Session-Set-Cart: apple"},
			want: map[string]string{"X-Session-Plan": "pro", "X-Session-Cart": "apple"}},
		{name: "delete", commands: []string{"X-Session-Delete: plan"}, want: map[string]string{}},
		{name: "renew", commands: []string{"X-Session-Renew: true"}, renews: true,
			want: map[string]string{"X-Session-Plan": "pro"}},
		{name: "destroy", commands: []string{"X-Session-Destroy: true"}},
	}
	for _, move := range storeMoves {
		t.Run(move.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					from, to := move.from(t), move.to(t)
					s, g := gatedSite(t, func(t *testing.T, options string) *site {
						return newSiteOn(t, "store "+from, "")
					})
					a := s.visitor()
					a.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Plan: pro")
					sid := a.sid
					renewal := a.start(g, "renewal", "X-Session-Renew: true")

					s.store = "store " + to + "\n\t\tfallback_store " + from
					s.load()
					expectUser(t, &visitor{site: s, sid: sid}, "alice") // copied
					// Past touch_interval, so that the request touches.
					clock.Advance(90 * time.Second)
					held := (&visitor{site: s, sid: sid}).start(g, "held", tc.commands...)
					res := renewal.finish(t)
					c := sidCookie(res)
					if res.StatusCode != http.StatusOK || c == nil || c.MaxAge < 0 || c.Value == sid {
						t.Fatalf("the renewal of the config before was answered %d with cookie %v, want 200 and a new session", res.StatusCode, c)
					}
					renewed := c.Value
					res = held.finish(t)
					if res.StatusCode != http.StatusOK && !(tc.name == "touch" && res.StatusCode == http.StatusForbidden) {
						t.Fatalf("the request in flight across the renewal was answered %d, want 200", res.StatusCode)
					}
					holds := renewed
					if tc.renews {
						c := sidCookie(res)
						if c == nil || c.MaxAge < 0 || c.Value == renewed || c.Value == sid {
							t.Fatalf("the renewal in flight sent cookie %v, want a new session", c)
						}
						holds = c.Value
					}
					if tc.want == nil {
						expectUser(t, &visitor{site: s, sid: renewed}, "")
						expectUser(t, &visitor{site: s, sid: sid}, "")
						return
					}
					want := map[string]string{"X-Session-User": "alice"}
					for k, v := range tc.want {
						want[k] = v
					}
					expectSession(t, (&visitor{site: s, sid: holds}).get("/look"), want)
				})
			}
		})
	}
}

// TestMoveRequestInFlightAcrossALoginOnTheOldStore: as above, but the
// site on the old store logs another user in on the session (a new ID,
// the old one forwarded to it). The request in flight, made for the
// user who was logged in when it began, lands nothing in the new user's
// session, as in one store: not its write, not its logout.
func TestMoveRequestInFlightAcrossALoginOnTheOldStore(t *testing.T) {
	inFlight := []struct {
		name     string
		commands []string
	}{
		{"set", []string{"X-Session-Set-Cart: apple"}},
		{"delete", []string{"X-Session-Delete: plan"}},
		{"renew", []string{"X-Session-Renew: true"}},
		{"destroy", []string{"X-Session-Destroy: true"}},
	}
	for _, move := range movesOfTwoSites {
		t.Run(move.name, func(t *testing.T) {
			for _, tc := range inFlight {
				t.Run(tc.name, func(t *testing.T) {
					dir, err := filepath.EvalSymlinks(t.TempDir())
					if err != nil {
						t.Fatal(err)
					}
					staying, moving := move.stores(t, dir)
					siteOld, siteNew, g := movingSites(t, staying, moving)
					onOld := siteOld.visitor()
					onOld.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Plan: pro")
					sid := onOld.sid
					expectUser(t, &visitor{site: siteNew, sid: sid}, "alice") // copied
					held := (&visitor{site: siteNew, sid: sid}).start(g, "held", tc.commands...)
					onOld.get("/login", "X-Session-Set-User: bob")
					if onOld.sid == "" || onOld.sid == sid {
						t.Fatalf("the login sent cookie %q, want a new session", onOld.sid)
					}
					res := held.finish(t)
					if c := sidCookie(res); c != nil && c.MaxAge >= 0 {
						t.Fatalf("the request in flight across another user's login sent cookie max-age %d, want none", c.MaxAge)
					}
					for _, s := range []*site{siteNew, siteOld} {
						got := (&visitor{site: s, sid: onOld.sid}).get("/look").session()
						if got["X-Session-User"] != "bob" || got["X-Session-Plan"] != "pro" || got["X-Session-Cart"] != "" {
							t.Fatalf("bob's session is %v after a request of alice's in flight across his login, want user bob, plan pro and no cart", got)
						}
					}
				})
			}
		})
	}
}
