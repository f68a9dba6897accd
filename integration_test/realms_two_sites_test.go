package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// Promises of README.md about what one site's users do to another site's
// on one Caddy, when both sites keep their sessions in one store (a bolt
// file, a Redis): each site is a realm of its own ("Sessions", Realms),
// and
//   - "the cap": a login over max_sessions_per_identity ends the least
//     recently seen of the user's sessions "in the realm" ("A user's own
//     devices");
//   - "the list": X-Session-Meta-Devices holds "the user's live sessions
//     in this realm";
//   - "log out that device": X-Session-Revoke of "another realm's"
//     session is refused;
//   - "X-Session-Destroy-All and the admin API's revoke by user act
//     within one realm", and their session.destroyed events tell of the
//     realm they acted in and count only its sessions ("Events":
//     `sessions`: how many ended; `realm`: the realm of the session).

// loadSites is multiSite.load with global options besides the harness's.
func (m *multiSite) loadSites(globals string, sites ...[2]string) {
	m.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n\t%s\n}\n", adminPort, freePort(m.t), freePort(m.t), globals)
	for _, s := range sites {
		fmt.Fprintf(&b, "http://127.0.0.1:%d {\n%s\n}\n", m.ports[s[0]], m.expand(s[1]))
	}
	m.tester.InitServer(b.String(), "caddyfile")
}

// realmOf is the default realm of a site of the multiSite.
func (m *multiSite) realmOf(site string) string {
	return fmt.Sprintf("127.0.0.1@:%d", m.ports[site])
}

// shortOf is the short hash of the session a "sid=<id>" cookie holds.
func shortOf(cookie string) string {
	_, id, _ := strings.Cut(cookie, "=")
	return session.HashID(id).Short()
}

// userOn reports whether the app of site got the session of cookie with
// the user alice.
func (m *multiSite) aliceOn(site, cookie string) bool {
	m.t.Helper()
	_, body := m.get(site, "/", cookie)
	return strings.Contains(body, `"X-Session-User":["alice"]`)
}

// destroyedOf is the data of the session.destroyed events since the last
// takeEvents.
func destroyedOf(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range takeEvents() {
		if e.name == "session.destroyed" {
			out = append(out, e.data(t))
		}
	}
	return out
}

func TestRealmsOfOneStoreKeepTheirUsersApart(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"bolt", func(t *testing.T) string { return "store bolt {db:shared}" }},
		{"redis", func(t *testing.T) string { return "store redis " + redistest.Start(t).URL() }},
	}
	cases := []struct {
		name    string
		options string
		// run gets the Caddy, with sites "one" and "two", and the cookies
		// "sid=..." of alice's logins: one on site one, one on site two.
		run func(t *testing.T, m *multiSite, one, two string)
	}{
		{"the cap counts the sessions of its realm", "max_sessions_per_identity 1", func(t *testing.T, m *multiSite, one, two string) {
			if !m.aliceOn("one", one) {
				t.Fatal("alice's login on site two ended her session on site one: the cap counted another realm's sessions")
			}
			takeEvents()
			again := m.login("one", "sid", "X-Session-Set-User: alice")
			if m.aliceOn("one", one) {
				t.Fatal("a second login on site one, over a cap of 1, kept the first session of its realm")
			}
			if !m.aliceOn("one", again) {
				t.Fatal("the login over the cap lost its own session")
			}
			if !m.aliceOn("two", two) {
				t.Fatal("a login over the cap on site one ended alice's session on site two")
			}
			ev := destroyedOf(t)
			if len(ev) != 1 || ev[0]["cause"] != "evicted" || ev[0]["realm"] != m.realmOf("one") || ev[0]["session"] != shortOf(one) {
				t.Fatalf("session.destroyed events %v, want one eviction of the first session in realm %s", ev, m.realmOf("one"))
			}
		}},
		{"the devices list holds the sessions of its realm", "devices /account/devices", func(t *testing.T, m *multiSite, one, two string) {
			twoAgain := m.login("two", "sid", "X-Session-Set-User: alice")
			_, body := m.get("one", "/account/devices", one)
			if list := devicesOf(t, body); len(list) != 1 || list[0]["session"] != shortOf(one) {
				t.Fatalf("site one's devices list holds %d sessions, want only its own (site two's are of another realm): %v", len(list), list)
			}
			_, body = m.get("two", "/account/devices", twoAgain)
			if list := devicesOf(t, body); len(list) != 2 {
				t.Fatalf("site two's devices list holds %d sessions, want its realm's 2: %v", len(list), list)
			}
		}},
		{"X-Session-Revoke of another realm's session is refused", "devices /account/devices", func(t *testing.T, m *multiSite, one, two string) {
			before := rejected(t, "unknown_session")
			takeEvents()
			res, _ := m.get("one", "/account/devices", one, "X-Session-Revoke: "+shortOf(two), "X-Session-Set-Cart: apple")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("the refused revocation: %d, want the app's 200", res.StatusCode)
			}
			if got := rejected(t, "unknown_session"); got != before+1 {
				t.Fatalf("commands_rejected_total{reason=unknown_session} went from %v to %v, want one more", before, got)
			}
			if !m.aliceOn("two", two) {
				t.Fatal("site one's X-Session-Revoke ended alice's session on site two")
			}
			if ev := destroyedOf(t); len(ev) != 0 {
				t.Fatalf("a refused revocation emitted %v", ev)
			}
			if _, body := m.get("one", "/", one); strings.Contains(body, "X-Session-Cart") {
				t.Fatal("the response whose revocation was refused had its other commands applied")
			}
		}},
		{"a logout everywhere ends and counts its realm's sessions", "", func(t *testing.T, m *multiSite, one, two string) {
			oneAgain := m.login("one", "sid", "X-Session-Set-User: alice")
			takeEvents()
			m.get("one", "/", one, "X-Session-Destroy-All: true")
			ev := destroyedOf(t)
			if len(ev) != 1 || ev[0]["cause"] != "logout_all" || ev[0]["realm"] != m.realmOf("one") || ev[0]["sessions"] != 2.0 {
				t.Fatalf("session.destroyed events %v, want one logout_all of 2 sessions in realm %s", ev, m.realmOf("one"))
			}
			if m.aliceOn("one", one) || m.aliceOn("one", oneAgain) {
				t.Fatal("the logout everywhere left a session of its realm")
			}
			if !m.aliceOn("two", two) {
				t.Fatal("a logout everywhere on site one ended alice's session on site two")
			}
		}},
		{"the admin API shows each session with its site's realm", "", func(t *testing.T, m *multiSite, one, two string) {
			for _, c := range []struct{ site, cookie string }{{"one", one}, {"two", two}} {
				_, id, _ := strings.Cut(c.cookie, "=")
				var got map[string]any
				sessionAPI(t, http.MethodGet, "/session/sessions/"+session.HashID(id).String(), "").decode(t, http.StatusOK, &got)
				if got["realm"] != m.realmOf(c.site) {
					t.Fatalf("the admin API shows alice's session of site %s in realm %v, want %q", c.site, got["realm"], m.realmOf(c.site))
				}
			}
		}},
		{"an admin revoke by user ends and counts the realm named", "", func(t *testing.T, m *multiSite, one, two string) {
			takeEvents()
			a := sessionAPI(t, http.MethodPost, "/session/revoke", fmt.Sprintf(`{"value": "alice", "realm": %q}`, m.realmOf("two")))
			if a.status != http.StatusOK || !strings.Contains(string(a.body), `"revoked":1`) {
				t.Fatalf("revoke in realm two: %d %s, want one session revoked", a.status, a.body)
			}
			ev := destroyedOf(t)
			if len(ev) != 1 || ev[0]["cause"] != "admin" || ev[0]["realm"] != m.realmOf("two") || ev[0]["sessions"] != 1.0 {
				t.Fatalf("session.destroyed events %v, want one admin revocation of 1 session in realm %s", ev, m.realmOf("two"))
			}
			if m.aliceOn("two", two) {
				t.Fatal("the revoked realm's session lives on")
			}
			if !m.aliceOn("one", one) {
				t.Fatal("a revoke in realm two ended alice's session on site one")
			}
		}},
	}
	for _, st := range stores {
		for _, tc := range cases {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				m := newMultiSite(t, "one", "two")
				body := "session {\n\t\t" + st.store(t) + "\n\t\t" + tc.options + "\n\t}\n\treverse_proxy {up}"
				m.loadSites(sessionEvents, [2]string{"one", body}, [2]string{"two", body})
				one := m.login("one", "sid", "X-Session-Set-User: alice")
				two := m.login("two", "sid", "X-Session-Set-User: alice")
				if !m.aliceOn("one", one) || !m.aliceOn("two", two) {
					t.Fatal("alice's logins do not open on their own sites")
				}
				tc.run(t, m, one, two)
			})
		}
	}
}
