package integration_test

import (
	"fmt"
	"strings"
	"testing"
)

const (
	indexKeyA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	indexKeyB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// sealWith is a seal_values block with index_key key, indented for a
// session nested in a handle block.
func sealWith(key string) string {
	return "seal_values {\n\t\t\t\t\tindex_key " + key + "\n\t\t\t\t}"
}

// A logout everywhere (X-Session-Destroy-All) through either of two
// session handlers of one realm and store ends every session of the user,
// whichever handler wrote it last. The README's stricter inner handler
// with seal_values, nested in the site's own `session` without it, is
// such a pair: the inner handler indexes the user of a session it writes
// under the keyed hash of the name, the outer one under the name, and the
// outer one's logout everywhere looked under the name alone, so the
// session the user had last used under /admin/ lived on after the user
// logged out everywhere (a password change, a stolen laptop).
func TestConfigLogoutEverywhereThroughEitherHandlerOfARealm(t *testing.T) {
	cases := []struct{ name, outer, inner string }{
		{"inner handler sealed", "", sealWith(indexKeyA)},
		{"outer handler sealed", sealWith(indexKeyA), ""},
		{"both sealed under one index_key", sealWith(indexKeyA), sealWith(indexKeyA)},
	}
	// where the other session was last written, and where the logout
	// everywhere is sent
	paths := []struct{ lastUsed, logout string }{{"/admin/x", "/"}, {"/", "/admin/x"}, {"/admin/x", "/admin/y"}, {"/", "/"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMultiSite(t, "s")
			m.load([2]string{"s", `session {
				store bolt {db:shared}
				` + c.outer + `
			}
			handle /admin/* {
				session {
					store bolt {db:shared}
					` + c.inner + `
				}
				reverse_proxy {up}
			}
			reverse_proxy {up}`})
			for i, p := range paths {
				t.Run(fmt.Sprintf("used at %s, logout at %s", p.lastUsed, p.logout), func(t *testing.T) {
					user := fmt.Sprintf("user%d", i)
					other := m.login("s", "sid", "X-Session-Set-User: "+user)
					if _, body := m.get("s", p.lastUsed, other, "X-Session-Set-Note: written here"); !strings.Contains(body, user) {
						t.Fatalf("the session is not the user's at %s: %s", p.lastUsed, body)
					}
					this := m.login("s", "sid", "X-Session-Set-User: "+user)
					m.get("s", p.logout, this, "X-Session-Destroy-All: true")
					for _, cookie := range []string{other, this} {
						if _, body := m.get("s", "/", cookie); strings.Contains(body, user) {
							t.Fatalf("a session of the user lives on after a logout everywhere: %s", body)
						}
					}
				})
			}
		})
	}
}

// Two handlers of one realm and store with seal_values under different
// index_keys are refused: they share sessions, and each tags a session's
// user under its own key; a logout everywhere through one ended neither
// the sessions the other had written last nor, since it took the
// request's own session for another user's, the request's own. Different
// keys in different realms (a named one, or that of a cookie of the
// handler's own), or one key in one realm, load.
func TestConfigTwoIndexKeysInOneRealmAreRefused(t *testing.T) {
	site := func(outer, inner, innerRealm string) string {
		return fmt.Sprintf(`session {
		%%s
		%s
	}
	handle /admin/* {
		session {
			%%s
			%s
			%s
		}
		respond admin
	}
	respond ok`, outer, innerRealm, inner)
	}
	refused := []struct{ name, body string }{
		{"nested, two keys", site(sealWith(indexKeyA), sealWith(indexKeyB), "")},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			db := "store bolt " + t.TempDir() + "/s.db"
			configRefused(t, fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\t%s\n}", adminPort, freePort(t), fmt.Sprintf(c.body, db, db)),
				"caddyfile", "seal_values: two session handlers of realm")
		})
	}
	loads := []struct{ name, body string }{
		{"nested, one key", site(sealWith(indexKeyA), sealWith(indexKeyA), "")},
		{"nested, two keys, two realms", site(sealWith(indexKeyA), sealWith(indexKeyB), "cookie asid\n\t\t\trealm admin")},
		// A cookie of its own is a realm of its own (splitCookies).
		{"nested, two keys, with its cookie", site(sealWith(indexKeyA), sealWith(indexKeyB), "cookie asid")},
		{"nested, one sealed", site("", sealWith(indexKeyB), "")},
	}
	for _, c := range loads {
		t.Run(c.name, func(t *testing.T) {
			m := newMultiSite(t, "s")
			db := "store bolt {db:s}"
			m.load([2]string{"s", fmt.Sprintf(c.body, db, db)})
			if _, body := m.get("s", "/admin/x", ""); body != "admin" {
				t.Fatalf("the config does not serve: %q", body)
			}
		})
	}
}
