package integration_test

import (
	"net/http"
	"testing"
	"time"
)

// TestSecurityForwardRecordCarriesForTwoMinutesOnly: SECURITY.md, "Renewal
// on privilege change": "a forward record lets only requests already in
// flight carry their changes to the successor, for at most two minutes".
// TestRequestInFlightAcrossARenewal shows the carrying; here the bound,
// through a real Caddy, with the stores' own removal of expired records
// running as the clock passes (bolt's sweeper, Redis's TTLs): a request that loaded the session before a
// renewal and answers within two minutes of it writes into the renewed
// session; one that answers later writes nothing and sets no cookie, and
// the renewed session is left as it was.
func TestSecurityForwardRecordCarriesForTwoMinutesOnly(t *testing.T) {
	rows := []struct {
		name    string
		after   time.Duration // from the renewal to the answer
		carried bool
	}{
		{"at once", 0, true},
		{"a minute and a half later", 90 * time.Second, true},
		{"two and a half minutes later", 150 * time.Second, false},
		{"ten minutes later", 10 * time.Minute, false},
	}
	onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
		s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSiteWith(t, st.store, "", "") })
		for i, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				v := login(t, s, "alice")
				old := v.sid
				slow := v.start(g, "theme-"+string(rune('a'+i)), "X-Session-Set-Theme: dark")
				expectStatus(t, v.get("/", "X-Session-Renew: true"), http.StatusOK)
				if v.sid == old || v.sid == "" {
					t.Fatal("the renewal kept the ID")
				}
				st.pass(t, row.after) // the store's own removal runs meanwhile
				res := slow.finish(t)
				expectNoCookie(t, res, "a request in flight across a renewal of its session")
				want := map[string]string{"user": "alice", "cart": "apple"}
				if row.carried {
					want["theme"] = "dark"
				}
				if got := sessionWith(t, s, v.sid); !mapsEqual(got, want) {
					t.Fatalf("answered %v after the renewal, the renewed session is %v, want %v", row.after, got, want)
				}
				if got := sessionWith(t, s, old); len(got) != 0 {
					t.Fatalf("the rotated-away ID opens %v", got)
				}
			})
		}
	})
}
