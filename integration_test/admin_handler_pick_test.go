package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// The admin API acts on a store through one of its handlers (pickStore
// takes the first live handler of the store), whatever realm the request
// names. A revocation by user in a realm whose handler seals its values
// must find that realm's sealed sessions, which are indexed under the
// keyed hash of the name: when the first handler of the shared store is
// another realm's, without seal_values, the revocation looks only under
// the plain name, revokes nothing, and answers {"revoked":0} while alice's
// session lives on. (The two realms are in one site, so that the order of
// the handlers is the order of the routes; in two sites it is the order
// in which Caddy provisions its servers, which varies.)
func TestAdminRevokeInASealedRealmOfASharedStore(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `route {
		handle /plain/* {
			session {
				store bolt {db:shared}
				realm plain
				cookie plainsid
			}
			reverse_proxy {up}
		}
		handle /sealed/* {
			session {
				store bolt {db:shared}
				realm sealed
				cookie sealedsid
				seal_values
			}
			reverse_proxy {up}
		}
	}`})
	res, _ := m.get("s", "/sealed/login", "", "X-Session-Set-User: alice")
	var login string
	for _, c := range res.Cookies() {
		if c.Name == "sealedsid" {
			login = c.Name + "=" + c.Value
		}
	}
	if login == "" {
		t.Fatal("the sealed realm issued no cookie")
	}
	if _, body := m.get("s", "/sealed/", login); !strings.Contains(body, "alice") {
		t.Fatalf("the login does not work in its own realm: %s", body)
	}

	a := sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice", "realm": "sealed"}`)
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"revoked":1`) {
		t.Errorf("revoke of alice in the sealed realm: %d %s, want one session revoked", a.status, a.body)
	}
	if _, body := m.get("s", "/sealed/", login); strings.Contains(body, "alice") {
		t.Fatalf("alice's session in the sealed realm lives on after the admin API revoked her: %s", body)
	}
}
