package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// storeMove is a move from one store to another: the store lines of each.
type storeMove struct {
	name     string
	from, to func(t *testing.T) string // backend and arguments, as after `store`
}

var storeMoves = []storeMove{
	{"bolt to bolt", tempBolt, tempBolt},
	{"bolt to redis", tempBolt, tempRedis},
	{"redis to bolt", tempRedis, tempBolt},
}

func tempBolt(t *testing.T) string { return "bolt " + filepath.Join(t.TempDir(), "sessions.db") }

func tempRedis(t *testing.T) string { return "redis " + redistest.Start(t).URL() }

// TestEndsInFlightAcrossTheFallbackReload: a request of the config before
// the reload that adds fallback_store, in flight across it, ends or
// renews the session after a request of the new config copied it into the
// new store. The end holds in the new store too: the cookie the browser
// still holds opens nothing, whatever ended it (a logout, a logout
// everywhere, a revocation, a renewal, remember-me on or off, an eviction
// over the cap), as it would in one store.
func TestEndsInFlightAcrossTheFallbackReload(t *testing.T) {
	cases := []struct {
		name    string
		options string
		login   []string // more commands of a's login
		// inFlight returns who sends the request held across the reload,
		// with its commands.
		inFlight func(a, b, c *visitor) (*visitor, []string)
		// renews: the held request's own cookie is renewed, and the new
		// one must open the session.
		renews bool
		// copyRenewed: the new config renews the copy before the held
		// request ends the session.
		copyRenewed bool
	}{
		{name: "destroy", inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return a, []string{"X-Session-Destroy: true"}
		}},
		{name: "destroy after the copy was renewed", copyRenewed: true, inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return a, []string{"X-Session-Destroy: true"}
		}},
		{name: "destroy-all", inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return b, []string{"X-Session-Destroy-All: true"}
		}},
		{name: "destroy-all after the copy was renewed", copyRenewed: true, inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return b, []string{"X-Session-Destroy-All: true"}
		}},
		{name: "revoke", options: "devices /account/devices", inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return b, []string{"X-Session-Revoke: " + a.shortHash()}
		}},
		{name: "renew", renews: true, inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return a, []string{"X-Session-Renew: true"}
		}},
		{name: "remember on", renews: true, inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return a, []string{"X-Session-Remember: true"}
		}},
		{name: "remember off", renews: true, login: []string{"X-Session-Remember: true"}, inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return a, []string{"X-Session-Remember: false"}
		}},
		{name: "evicted over the cap", options: "max_sessions_per_identity 2", inFlight: func(a, b, c *visitor) (*visitor, []string) {
			return c, []string{"X-Session-Set-User: alice"}
		}},
	}
	for _, move := range storeMoves {
		t.Run(move.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					from, to := move.from(t), move.to(t)
					s, g := gatedSite(t, func(t *testing.T, options string) *site {
						return newSiteOn(t, "store "+from, tc.options)
					})
					a, b, c := s.visitor(), s.visitor(), s.visitor()
					a.get("/login", append([]string{"X-Session-Set-User: alice"}, tc.login...)...)
					b.get("/login", "X-Session-Set-User: alice")
					sid := a.sid
					actor, commands := tc.inFlight(a, b, c)
					held := actor.start(g, "held", commands...)

					s.store = "store " + to + "\n\t\tfallback_store " + from
					s.load()
					tab := &visitor{site: s, sid: sid}
					expectUser(t, tab, "alice") // copied into the new store
					if tc.copyRenewed {
						tab.get("/renew", "X-Session-Renew: true")
						if tab.sid == sid {
							t.Fatal("the renewal issued no new cookie")
						}
						expectUser(t, tab, "alice")
					}
					res := held.finish(t)
					expectStatus(t, &response{Response: res}, http.StatusOK)

					expectUser(t, &visitor{site: s, sid: sid}, "")
					if tc.copyRenewed {
						expectUser(t, tab, "")
					}
					if tc.renews {
						c := sidCookie(res)
						if c == nil || c.Value == sid || c.MaxAge < 0 {
							t.Fatalf("the renewal sent cookie %v, want a new session", c)
						}
						expectUser(t, &visitor{site: s, sid: c.Value}, "alice")
					}
				})
			}
		})
	}
}

// TestEndsInTheFallbackStoreThroughAnotherSite: one config, two sites of
// one realm: one on the old store, one on the new store falling back to
// it. A session the second site copied ends through the first, by a
// logout, by the admin API's revocation of the session or of the user on
// the old store: the copy ends too, and the cookie opens nothing on
// either site.
func TestEndsInTheFallbackStoreThroughAnotherSite(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	oldDB, newDB := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
	cases := []struct {
		name string
		end  func(t *testing.T, onOld *visitor)
	}{
		{"logout on the old store's site", func(t *testing.T, onOld *visitor) {
			onOld.get("/logout", "X-Session-Destroy: true")
		}},
		{"admin DELETE on the old store", func(t *testing.T, onOld *visitor) {
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+onOld.adminHash()+"?store=bolt:"+oldDB, "").decode(t, http.StatusOK, &map[string]any{})
		}},
		{"admin revoke of the user on the old store", func(t *testing.T, onOld *visitor) {
			sessionAPI(t, http.MethodPost, "/session/revoke?store=bolt:"+oldDB, `{"value": "alice"}`).decode(t, http.StatusOK, &map[string]any{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t)
			siteOld := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t)}
			siteOld.tester.Client.Jar = nil
			siteNew := &site{t: t, tester: siteOld.tester, port: freePort(t)}
			siteOld.reload(fmt.Sprintf(`{
	admin localhost:%d
	skip_install_trust
}
http://127.0.0.1:%d {
	session {
		store bolt %s
		realm app
	}
	reverse_proxy %s
}
http://127.0.0.1:%d {
	session {
		store bolt %s
		fallback_store bolt %s
		realm app
	}
	reverse_proxy %s
}
`, adminPort, siteOld.port, oldDB, up.addr(), siteNew.port, newDB, oldDB, up.addr()))
			onOld := siteOld.visitor()
			onOld.get("/login", "X-Session-Set-User: alice")
			onNew := &visitor{site: siteNew, sid: onOld.sid}
			expectUser(t, onNew, "alice") // copied into the new store
			sid := onOld.sid
			tc.end(t, onOld)
			expectUser(t, &visitor{site: siteOld, sid: sid}, "")
			expectUser(t, &visitor{site: siteNew, sid: sid}, "")
		})
	}
}

// TestEndsAfterTheFallbackIsRemovedStayEnded: step 3 of a move, the
// reload that removes fallback_store, with a request of the config that
// had it still in flight. A session that ends through the new config
// meanwhile (the old store still holds the copy it was moved from) is not
// copied back into the new store when that request answers, whether the
// answer writes to the session or only touches it.
func TestEndsAfterTheFallbackIsRemovedStayEnded(t *testing.T) {
	cases := []struct {
		name     string
		commands []string
	}{
		{"touch", nil},
		{"write", []string{"X-Session-Set-Cart: apple"}},
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
					a.get("/login", "X-Session-Set-User: alice")
					sid := a.sid
					// Step 1: the session is copied; the old store keeps it.
					s.store = "store " + to + "\n\t\tfallback_store " + from
					s.load()
					expectUser(t, a, "alice")
					held := a.start(g, "held", tc.commands...)
					// Step 3, and a logout through the config without the
					// fallback.
					s.store = "store " + to
					s.load()
					a.get("/logout", "X-Session-Destroy: true")
					if a.sid != "" {
						t.Fatal("the logout kept the cookie")
					}
					held.finish(t)
					expectUser(t, &visitor{site: s, sid: sid}, "")
				})
			}
		})
	}
}

// TestEndsInTheNewStoreThroughAnotherSite: one config, two sites of one
// realm on the new store, one falling back to the old store and one not.
// A session the first copied, which ends or is renewed through the
// second, is not copied back from the old store by the first: the cookie
// the browser held opens nothing on either site (after a renewal, the new
// cookie opens the session).
func TestEndsInTheNewStoreThroughAnotherSite(t *testing.T) {
	cases := []struct {
		name     string
		commands []string
		renews   bool
	}{
		{"destroy", []string{"X-Session-Destroy: true"}, false},
		{"destroy-all", []string{"X-Session-Destroy-All: true"}, false},
		{"renew", []string{"X-Session-Renew: true"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldDB, newDB := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
			up := startUpstream(t)
			plain := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t)}
			plain.tester.Client.Jar = nil
			moving := &site{t: t, tester: plain.tester, port: freePort(t)}
			siteConfig := func(s *site, stores string) string {
				return fmt.Sprintf("http://127.0.0.1:%d {\n\tsession {\n\t\t%s\n\t\trealm app\n\t}\n\treverse_proxy %s\n}\n", s.port, stores, up.addr())
			}
			global := fmt.Sprintf("{\n\tadmin localhost:%d\n\tskip_install_trust\n}\n", adminPort)
			moving.reload(global + siteConfig(moving, "store bolt "+oldDB))
			a := moving.visitor()
			a.get("/login", "X-Session-Set-User: alice")
			sid := a.sid
			moving.reload(global + siteConfig(plain, "store bolt "+newDB) +
				siteConfig(moving, "store bolt "+newDB+"\n\t\tfallback_store bolt "+oldDB))
			expectUser(t, a, "alice") // copied into the new store

			onPlain := &visitor{site: plain, sid: sid}
			onPlain.get("/end", tc.commands...)
			expectUser(t, &visitor{site: moving, sid: sid}, "")
			expectUser(t, &visitor{site: plain, sid: sid}, "")
			if tc.renews {
				if onPlain.sid == "" || onPlain.sid == sid {
					t.Fatalf("the renewal sent cookie %q, want a new session", onPlain.sid)
				}
				expectUser(t, &visitor{site: moving, sid: onPlain.sid}, "alice")
			}
		})
	}
}

// TestWritesInFlightAcrossTheFallbackReload: a request of the config
// before the reload that adds fallback_store, in flight across it, writes
// to the session after a request of the new config copied it into the
// new store. The write is not lost: the copy, which the browser's cookie
// opens from then on, has it, as one store would, beside what the new
// config wrote meanwhile.
func TestWritesInFlightAcrossTheFallbackReload(t *testing.T) {
	cases := []struct {
		name     string
		commands []string
		want     map[string]string // the session then, beside user and theme
	}{
		{"set", []string{"X-Session-Set-Cart: apple"}, map[string]string{"X-Session-Cart": "apple"}},
		{"delete", []string{"X-Session-Delete: plan"}, map[string]string{}},
		{"flash", []string{"X-Session-Flash-Notice: Saved"}, map[string]string{"X-Session-Flash-Notice": "Saved"}},
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
					held := a.start(g, "held", tc.commands...)
					s.store = "store " + to + "\n\t\tfallback_store " + from
					s.load()
					a.get("/theme", "X-Session-Set-Theme: dark") // copied, and written in the new store
					held.finish(t)

					want := map[string]string{"X-Session-User": "alice", "X-Session-Theme": "dark"}
					if tc.name != "delete" {
						want["X-Session-Plan"] = "pro"
					}
					for k, v := range tc.want {
						want[k] = v
					}
					expectSession(t, a.navigate(http.MethodGet, "/next"), want)
				})
			}
		})
	}
}
