package integration_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
)

// TestMoveCopiesKeepEachRealmsSessions: two sites of different realms
// on one old store, one of them moving to a new store (fallback_store),
// the other staying. A session of either realm, copied into the new
// store on first use (its cookie sent to the moving site) or by
// migrate, opens nothing on the other realm's site, before and after the
// copy, and an end on its own site holds on both stores.
func TestMoveCopiesKeepEachRealmsSessions(t *testing.T) {
	for _, move := range movesOfTwoSites[1:3] {
		t.Run(move.name, func(t *testing.T) {
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			staying, moving := move.stores(t, dir)
			siteY, siteX, _ := movingSitesOf(t, staying, "y", moving, "x")
			y := siteY.visitor()
			y.get("/login", "X-Session-Set-User: yuki")
			x := siteX.visitor()
			x.get("/login", "X-Session-Set-User: xena")
			if y.sid == "" || x.sid == "" {
				t.Fatal("a login issued no session cookie")
			}
			// Each realm's cookie sent to the other realm's site.
			expectUser(t, &visitor{site: siteX, sid: y.sid}, "")
			expectUser(t, &visitor{site: siteY, sid: x.sid}, "")
			var v map[string]any
			sessionAPI(t, http.MethodPost, "/session/migrate?store="+url.QueryEscape(storeOfSite(t, siteX)), "").decode(t, http.StatusOK, &v)
			expectUser(t, &visitor{site: siteX, sid: y.sid}, "")
			expectUser(t, &visitor{site: siteY, sid: x.sid}, "")
			expectUser(t, y, "yuki")
			expectUser(t, x, "xena")

			// A write on the moving site to the other realm's cookie
			// starts a session of its own realm, and leaves the other alone.
			stray := &visitor{site: siteX, sid: y.sid}
			stray.get("/cart", "X-Session-Set-Cart: apple")
			if stray.sid == y.sid {
				t.Fatal("a write on realm x under realm y's cookie kept that cookie")
			}
			expectSession(t, y.get("/look"), map[string]string{"X-Session-User": "yuki"})

			// An end on its own site holds on both.
			sid := y.sid
			y.get("/logout", "X-Session-Destroy: true")
			expectUser(t, &visitor{site: siteY, sid: sid}, "")
			expectUser(t, &visitor{site: siteX, sid: sid}, "")
			sessionAPI(t, http.MethodPost, "/session/migrate?store="+url.QueryEscape(storeOfSite(t, siteX)), "").decode(t, http.StatusOK, &v)
			expectUser(t, &visitor{site: siteY, sid: sid}, "")
		})
	}
}

// storeOfSite names, for ?store=, the store with a fallback_store: the
// moving site's.
func storeOfSite(t *testing.T, _ *site) string {
	t.Helper()
	var stores []apiStore
	sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
	for _, s := range stores {
		if s.Backend == "redis" || filepath.Base(s.Name) == "new.db" {
			return s.Name
		}
	}
	t.Fatalf("no new store among %v", stores)
	return ""
}
