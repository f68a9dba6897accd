package integration_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// README.md, "Sessions", Realms: "Sessions stored before realms existed
// (before this version) are adopted by any realm until they expire ...;
// the first write stamps the writer's realm on them", and the admin API's
// revoke by user acts "within one realm ... (and sessions stored before
// realms)". Two sites of one store on one Caddy share such a session
// until one of them writes it; from then on it is that site's alone, and
// a new ID a site gives it (a renewal, a login) is that site's too, while
// the old ID opens nothing anywhere. A revocation or a logout everywhere
// in either realm ends it.
func TestSessionOfNoRealmIsStampedByItsFirstWriter(t *testing.T) {
	stores := []struct {
		name string
		// store stores the session upgradeID of the version before
		// realms (user alice, cart apple) and returns the store line.
		store func(t *testing.T, m *multiSite) string
	}{
		{"bolt", func(t *testing.T, m *multiSite) string {
			old, err := os.ReadFile(filepath.Join("testdata", "v1-sessions.db"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(m.dir, "shared.db"), old, 0o600); err != nil {
				t.Fatal(err)
			}
			return "store bolt {db:shared}"
		}},
		{"redis", func(t *testing.T, m *multiSite) string {
			srv := redistest.Start(t)
			writeLayout1(t, srv, upgradeID, map[string]string{"user": "alice", "cart": "apple"})
			return "store redis " + srv.URL()
		}},
	}
	const legacy = "sid=" + upgradeID
	// sees is the user and cart the app of site got for cookie, "" for
	// an anonymous request. Its response says X-Session-Touch: false: a
	// look that is no use of the session, so that no touch (a keep-alive
	// write, which stamps the realm as any write does) is due to it.
	sees := func(m *multiSite, site, cookie string) string {
		m.t.Helper()
		_, body := m.get(site, "/", cookie, "X-Session-Touch: false")
		var got []string
		for _, k := range []string{"User", "Cart"} {
			for _, v := range []string{"alice", "bob", "apple", "pear"} {
				if strings.Contains(body, fmt.Sprintf(`"X-Session-%s":[%q]`, k, v)) {
					got = append(got, v)
				}
			}
		}
		return strings.Join(got, " ")
	}
	// newCookie is the sid cookie a response set, failing if none.
	newCookie := func(t *testing.T, res *http.Response) string {
		t.Helper()
		for _, c := range res.Cookies() {
			if c.Name == "sid" && c.MaxAge >= 0 {
				return c.Name + "=" + c.Value
			}
		}
		t.Fatal("the response set no sid cookie")
		return ""
	}
	cases := []struct {
		name string
		run  func(t *testing.T, m *multiSite)
	}{
		{"a write stamps the writer's realm", func(t *testing.T, m *multiSite) {
			m.get("one", "/", legacy, "X-Session-Set-Cart: pear")
			if got := sees(m, "one", legacy); got != "alice pear" {
				t.Fatalf("site one, after its write, sees %q, want %q", got, "alice pear")
			}
			if got := sees(m, "two", legacy); got != "" {
				t.Fatalf("site two sees %q in a session site one wrote, want an anonymous request", got)
			}
		}},
		{"a touch stamps the toucher's realm", func(t *testing.T, m *multiSite) {
			clock.Advance(2 * time.Minute) // a touch is due
			m.get("one", "/", legacy)
			if got := sees(m, "one", legacy); got != "alice apple" {
				t.Fatalf("site one, after its touch, sees %q, want %q", got, "alice apple")
			}
			if got := sees(m, "two", legacy); got != "" {
				t.Fatalf("site two sees %q in a session site one touched, want an anonymous request", got)
			}
		}},
		{"a renewal gives a new ID of the renewer's realm", func(t *testing.T, m *multiSite) {
			renewed := newCookie(t, func() *http.Response { r, _ := m.get("one", "/", legacy, "X-Session-Renew: true"); return r }())
			if got := sees(m, "one", renewed); got != "alice apple" {
				t.Fatalf("site one sees %q in the renewed session, want %q", got, "alice apple")
			}
			if got := sees(m, "two", renewed); got != "" {
				t.Fatalf("site two sees %q in the session site one renewed, want an anonymous request", got)
			}
			for _, site := range []string{"two", "one"} {
				if got := sees(m, site, legacy); got != "" {
					t.Fatalf("site %s sees %q under the ID renewed away, want an anonymous request", site, got)
				}
			}
		}},
		{"a login gives a new ID of the login's realm", func(t *testing.T, m *multiSite) {
			login := newCookie(t, func() *http.Response { r, _ := m.get("one", "/", legacy, "X-Session-Set-User: bob"); return r }())
			if got := sees(m, "one", login); got != "bob apple" {
				t.Fatalf("site one sees %q after the login, want %q", got, "bob apple")
			}
			if got := sees(m, "two", login); got != "" {
				t.Fatalf("site two sees %q in bob's login on site one, want an anonymous request", got)
			}
			for _, site := range []string{"two", "one"} {
				if got := sees(m, site, legacy); got != "" {
					t.Fatalf("site %s sees %q under the ID the login rotated away, want an anonymous request", site, got)
				}
			}
		}},
		{"an admin revoke by user in either realm ends it", func(t *testing.T, m *multiSite) {
			a := sessionAPI(t, http.MethodPost, "/session/revoke", fmt.Sprintf(`{"value": "alice", "realm": %q}`, m.realmOf("two")))
			if a.status != http.StatusOK || !strings.Contains(string(a.body), `"revoked":1`) {
				t.Fatalf("revoke alice in realm two: %d %s, want the session of no realm revoked", a.status, a.body)
			}
			for _, site := range []string{"one", "two"} {
				if got := sees(m, site, legacy); got != "" {
					t.Fatalf("site %s sees %q in the revoked session, want an anonymous request", site, got)
				}
			}
		}},
		{"a logout everywhere in either realm ends it", func(t *testing.T, m *multiSite) {
			two := m.login("two", "sid", "X-Session-Set-User: alice")
			m.get("two", "/", two, "X-Session-Destroy-All: true")
			for _, site := range []string{"two", "one"} {
				if got := sees(m, site, legacy); got != "" {
					t.Fatalf("site %s sees %q in a session of alice after her logout everywhere on site two, want an anonymous request", site, got)
				}
			}
		}},
	}
	for _, st := range stores {
		for _, tc := range cases {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				m := newMultiSite(t, "one", "two")
				body := "session {\n\t\t" + st.store(t, m) + "\n\t\tidle_timeout " + century + "\n\t\tabsolute_timeout " + century + "\n\t}\n\treverse_proxy {up}"
				m.load([2]string{"one", body}, [2]string{"two", body})
				for _, site := range []string{"one", "two"} {
					if got := sees(m, site, legacy); got != "alice apple" {
						t.Fatalf("site %s sees %q in the session of no realm, want %q", site, got, "alice apple")
					}
				}
				tc.run(t, m)
			})
		}
	}
}
