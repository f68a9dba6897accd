package integration_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestOutageSitesSharingAStoreKeepToTheirRealm: two sites on one store
// (one faulty file, so one store name and one copy), the first with
// on_store_error stale, the second with each policy. Browsers send a
// cookie of 127.0.0.1 to every port, so each site gets the other's
// cookie too. While the store's reads fail, no site serves the other's
// session from the copy (SECURITY.md: "a handler adopts only its realm's
// sessions"); each answers its own by its own policy.
func TestOutageSitesSharingAStoreKeepToTheirRealm(t *testing.T) {
	cases := []struct {
		policy string
		// what b answers to its own session and to a's: a status, and
		// the user the app got.
		own, aAtB outageAnswer
	}{
		{"on_store_error 503", outageAnswer{503, ""}, outageAnswer{503, ""}},
		{"on_store_error anonymous", outageAnswer{200, ""}, outageAnswer{200, ""}},
		{"on_store_error stale 5m", outageAnswer{200, "bob"}, outageAnswer{200, ""}},
		{"# no on_store_error", outageAnswer{503, ""}, outageAnswer{503, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			t.Cleanup(func() { failReads.Store(false) })
			m := newMultiSite(t, "a", "b")
			m.load([2]string{"a", `session {
		store faulty {db:shared}
		on_store_error stale 5m
	}
	reverse_proxy {up}`}, [2]string{"b", `session {
		store faulty {db:shared}
		` + tc.policy + `
	}
	reverse_proxy {up}`})
			alice := m.login("a", "sid", "X-Session-Set-User: alice")
			bob := m.login("b", "sid", "X-Session-Set-User: bob")
			// Each site reads its own session, and the other's cookie,
			// before the outage.
			for _, c := range []struct{ site, who, cookie, user string }{
				{"a", "alice", alice, "alice"}, {"b", "bob", bob, "bob"}, {"a", "bob", bob, ""}, {"b", "alice", alice, ""},
			} {
				m.outageExpect(t, c.site, c.who, c.cookie, outageAnswer{200, c.user})
			}
			failReads.Store(true)
			m.outageExpect(t, "a", "alice", alice, outageAnswer{200, "alice"})
			m.outageExpect(t, "b", "bob", bob, tc.own)
			m.outageExpect(t, "b", "alice", alice, tc.aAtB)
			// a read b's session with bob's cookie: its copy holds it,
			// of b's realm, which a serves as it did then, anonymous.
			m.outageExpect(t, "a", "bob", bob, outageAnswer{200, ""})
		})
	}
}

type outageAnswer struct {
	status int
	user   string // the user the app got, "" for none
}

// outageExpect fails unless site answers a request with cookie, who's
// session cookie, as want.
func (m *multiSite) outageExpect(t *testing.T, site, who, cookie string, want outageAnswer) {
	t.Helper()
	res, body := m.get(site, "/", cookie)
	var r response
	r.Response = res
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &r.seen); err != nil {
			t.Fatalf("%s: the app's answer: %v", site, err)
		}
	}
	got := r.session()["X-Session-User"]
	if res.StatusCode != want.status || got != want.user {
		t.Fatalf("site %s, %s's cookie: status %d, the app got user %q; want %d and %q", site, who, res.StatusCode, got, want.status, want.user)
	}
}
