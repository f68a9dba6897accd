package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
	"github.com/caddy-session/caddy-session/store/transfer"
)

// The admin API acts on a store through the wrappers of every handler on
// it, and judges a session by the settings of the handlers of its realm,
// not through the first handler of the store whatever the session's
// realm. Each test below has a first handler without the wrapper or the
// settings that a second handler, on the same store, needs: through the
// first handler alone, the session the admin API revoked lives on. (The
// handlers are in one site, so that their order is the order of the
// routes; in two sites it is the order in which Caddy provisions its
// servers, which varies.)

// A revocation by user in a realm whose handler seals its values must
// find that realm's sealed sessions, which are indexed under the keyed
// hash of the name: through the first handler, without seal_values, it
// looked only under the plain name, revoked nothing, and answered
// {"revoked":0} while alice's session lived on.
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

// hashOf returns the hash of the session whose cookie is name=ID.
func hashOf(cookie string) string {
	_, id, _ := strings.Cut(cookie, "=")
	return session.HashID(id).String()
}

// revokeByUser revokes user's sessions in realm through the admin API and
// returns how many it says it revoked.
func revokeByUser(t *testing.T, realm, user string) int {
	t.Helper()
	var got struct{ Revoked int }
	sessionAPI(t, http.MethodPost, "/session/revoke", fmt.Sprintf(`{"value": %q, "realm": %q}`, user, realm)).decode(t, http.StatusOK, &got)
	return got.Revoked
}

// revokeByHash revokes the session of cookie through the admin API and
// returns how many it says it revoked.
func revokeByHash(t *testing.T, cookie string) int {
	t.Helper()
	var got struct{ Revoked int }
	sessionAPI(t, http.MethodDelete, "/session/sessions/"+hashOf(cookie), "").decode(t, http.StatusOK, &got)
	return got.Revoked
}

// A revocation must leave a tombstone in the copy of on_store_error
// stale, which another handler of the store keeps: through the first
// handler, without the policy, the session was deleted from the store but
// not from the copy, and while the store was down the second handler
// served the revoked session from it. The outage is the faulty store's:
// every read fails from the moment the test says so.
func TestAdminRevokeReachesTheStaleCopyOfAnotherHandler(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `route {
		handle /plain/* {
			session {
				store faulty {db:shared}
				realm plain
				cookie plainsid
			}
			reverse_proxy {up}
		}
		handle /stale/* {
			session {
				store faulty {db:shared}
				realm stale
				cookie stalesid
				on_store_error stale 5m
			}
			reverse_proxy {up}
		}
	}`})
	t.Cleanup(func() { failReads.Store(false) })

	cases := []struct {
		name, user string
		revoke     func(t *testing.T, cookie string) int
	}{
		{"by user", "alice", func(t *testing.T, _ string) int { return revokeByUser(t, "stale", "alice") }},
		{"by hash", "bob", revokeByHash},
	}
	cookies := make([]string, len(cases))
	for i, tc := range cases {
		// The login's write puts the session in the copy.
		cookies[i] = m.loginAt("s", "/stale/login", "", "stalesid", "X-Session-Set-User: "+tc.user)
		if n := tc.revoke(t, cookies[i]); n != 1 {
			t.Fatalf("revoke %s: %d sessions revoked, want 1", tc.name, n)
		}
	}
	kept := m.loginAt("s", "/stale/login", "", "stalesid", "X-Session-Set-User: carol")

	failReads.Store(true)
	if _, body := m.get("s", "/stale/", kept); !strings.Contains(body, "carol") {
		t.Fatalf("while the store is down, the copy does not serve a session that was not revoked: %s", body)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if res, body := m.get("s", "/stale/", cookies[i]); res.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, tc.user) {
				t.Fatalf("while the store is down, the session revoked %s is served from the copy: %d %s", tc.name, res.StatusCode, body)
			}
		})
	}
}

// seedBolt stores a live session of realm for each of users in the bolt
// file at path, before any Caddy opens it, and returns their cookies,
// named cookieName.
func seedBolt(t *testing.T, path, realm, cookieName string, users ...string) map[string]string {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := clock.Now()
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}
	imp := store.Import{Now: now}
	cookies := map[string]string{}
	for _, user := range users {
		id := session.NewID()
		rec := timeouts.NewRecord(now)
		rec.Values["user"] = user
		rec.Realm = realm
		imp.Entries = append(imp.Entries, store.Entry{Hash: session.HashID(id), Record: rec, Identity: "user"})
		cookies[user] = cookieName + "=" + id
	}
	if _, err := st.Import(context.Background(), imp); err != nil {
		t.Fatal(err)
	}
	return cookies
}

// A revocation must remove the session from the fallback_store of
// another handler of the store too: through the first handler, without
// one, a session still in the old store only was not found, and one
// copied into the new store was deleted there but copied back from the
// old one at its next request. The count is of sessions, once each,
// wherever they were. And caddy session migrate copies from that
// handler's fallback_store, which the first handler did not have.
func TestAdminRevokeReachesTheFallbackStoreOfAnotherHandler(t *testing.T) {
	m := newMultiSite(t, "s")
	cookies := seedBolt(t, m.expand("{db:old}"), "moving", "movingsid", "u1", "u2", "u3", "u4", "kept")
	m.load([2]string{"s", `route {
		handle /plain/* {
			session {
				store bolt {db:new}
				realm plain
				cookie plainsid
			}
			reverse_proxy {up}
		}
		handle /moving/* {
			session {
				store bolt {db:new}
				fallback_store bolt {db:old}
				realm moving
				cookie movingsid
			}
			reverse_proxy {up}
		}
	}`})

	cases := []struct {
		name, user string
		// copied: the session is read before the revocation, which
		// copies it into the new store; it stays in the old one too.
		copied bool
		revoke func(t *testing.T, cookie string) int
	}{
		{"by user, in the old store only", "u1", false, func(t *testing.T, _ string) int { return revokeByUser(t, "moving", "u1") }},
		{"by user, copied into the new store", "u2", true, func(t *testing.T, _ string) int { return revokeByUser(t, "moving", "u2") }},
		{"by hash, in the old store only", "u3", false, revokeByHash},
		{"by hash, copied into the new store", "u4", true, revokeByHash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cookie := cookies[tc.user]
			if tc.copied {
				if _, body := m.get("s", "/moving/", cookie); !strings.Contains(body, tc.user) {
					t.Fatalf("the session in the old store does not open: %s", body)
				}
			}
			if n := tc.revoke(t, cookie); n != 1 {
				t.Errorf("%d sessions revoked, want 1", n)
			}
			if _, body := m.get("s", "/moving/", cookie); strings.Contains(body, tc.user) {
				t.Fatalf("the revoked session was copied back from the old store: %s", body)
			}
		})
	}

	var migrated struct {
		store.CopyStats
		From, To   string
		NextCursor string `json:"next_cursor"`
	}
	sessionAPI(t, http.MethodPost, "/session/migrate", "").decode(t, http.StatusOK, &migrated)
	if migrated.Copied != 1 || migrated.Unchanged+migrated.Newer+migrated.Ended != 0 {
		t.Errorf("migrate did %+v, want the one session not revoked copied", migrated.CopyStats)
	}
	if _, body := m.get("s", "/moving/", cookies["kept"]); !strings.Contains(body, "kept") {
		t.Fatalf("the session not revoked does not open after the migration: %s", body)
	}
}

// A session is judged by the handlers of its realm: their timeouts say
// whether it is live, their identity key is the one a revocation by user
// goes by. The first handler's shorter idle timeout hid a session of the
// sealed realm from the listing and from GET, and stopped a revocation by
// the hash it had before a renewal from following it to its successor; a
// revocation by user went by the first handler's identity key, user,
// which indexes none of the sealed realm's sessions, and revoked nothing.
func TestAdminJudgesASessionByTheHandlersOfItsRealm(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `route {
		handle /plain/* {
			session {
				store bolt {db:shared}
				realm plain
				cookie plainsid
				idle_timeout 1m
				touch_interval 10s
			}
			reverse_proxy {up}
		}
		handle /sealed/* {
			session {
				store bolt {db:shared}
				realm sealed
				cookie sealedsid
				renew_on email
				seal_values
			}
			reverse_proxy {up}
		}
	}`})
	gone := func(t *testing.T, cookie, user string) {
		t.Helper()
		if _, body := m.get("s", "/sealed/", cookie); strings.Contains(body, user) {
			t.Fatalf("the session revoked through the admin API lives on: %s", body)
		}
	}
	cases := []struct {
		name, user string
		// renew gives the session a new ID after the login: the test
		// then acts on the hash of the ID it had, and checks the new one.
		renew bool
		check func(t *testing.T, cookie, was string)
	}{
		{"shown", "ann@example.com", false, func(t *testing.T, cookie, _ string) {
			var got struct {
				Realm  string
				Sealed bool
			}
			a := sessionAPI(t, http.MethodGet, "/session/sessions/"+hashOf(cookie), "")
			if a.status != http.StatusOK {
				t.Fatalf("GET of a live session of the sealed realm: %d %s", a.status, a.body)
			}
			if err := json.Unmarshal(a.body, &got); err != nil || got.Realm != "sealed" || !got.Sealed {
				t.Fatalf("GET of a session of the sealed realm: %s", a.body)
			}
		}},
		{"listed", "ben@example.com", false, func(t *testing.T, cookie, _ string) {
			a := sessionAPI(t, http.MethodGet, "/session/sessions", "")
			if a.status != http.StatusOK || !strings.Contains(string(a.body), hashOf(cookie)) {
				t.Fatalf("the listing leaves out a live session of the sealed realm: %d %s", a.status, a.body)
			}
		}},
		{"revoked by its hash", "cleo@example.com", false, func(t *testing.T, cookie, _ string) {
			if n := revokeByHash(t, cookie); n != 1 {
				t.Fatalf("%d sessions revoked, want 1", n)
			}
			gone(t, cookie, "cleo")
		}},
		{"revoked by the hash it had before a renewal", "dora@example.com", true, func(t *testing.T, cookie, was string) {
			var got struct{ Revoked int }
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+hashOf(was), "").decode(t, http.StatusOK, &got)
			if got.Revoked != 1 {
				t.Fatalf("%d sessions revoked, want 1", got.Revoked)
			}
			gone(t, cookie, "dora")
		}},
		{"revoked by user, by the realm's identity key", "eve@example.com", false, func(t *testing.T, cookie, _ string) {
			if n := revokeByUser(t, "sealed", "eve@example.com"); n != 1 {
				t.Fatalf("%d sessions revoked, want 1", n)
			}
			gone(t, cookie, "eve")
		}},
	}
	cookies, was := make([]string, len(cases)), make([]string, len(cases))
	for i, tc := range cases {
		cookies[i] = m.loginAt("s", "/sealed/login", "", "sealedsid", "X-Session-Set-Email: "+tc.user)
		if tc.renew {
			was[i] = cookies[i]
			cookies[i] = m.loginAt("s", "/sealed/renew", was[i], "sealedsid", "X-Session-Renew: true")
		}
	}
	// Past the first handler's idle timeout, within the sealed realm's,
	// and within the time a renewed session's old ID leads on.
	clock.Advance(90 * time.Second)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, cookies[i], was[i]) })
	}
}

// A revocation by user in a sealed realm looks under the keyed hashes of
// the realm's own index_key: through the first handler, it looked under
// that handler's key alone, which keys no session of the other realm.
func TestAdminRevokeUnderEachHandlersIndexKey(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `route {
		handle /a/* {
			session {
				store bolt {db:shared}
				realm a
				cookie asid
				seal_values {
					index_key aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
				}
			}
			reverse_proxy {up}
		}
		handle /b/* {
			session {
				store bolt {db:shared}
				realm b
				cookie bsid
				seal_values {
					index_key bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
				}
			}
			reverse_proxy {up}
		}
	}`})
	realms := []string{"b", "a"}
	cookies := map[string]string{}
	for _, realm := range realms {
		cookies[realm] = m.loginAt("s", "/"+realm+"/login", "", realm+"sid", "X-Session-Set-User: alice")
	}
	for i, realm := range realms {
		t.Run(realm, func(t *testing.T) {
			if n := revokeByUser(t, realm, "alice"); n != 1 {
				t.Errorf("%d sessions revoked, want 1", n)
			}
			if _, body := m.get("s", "/"+realm+"/", cookies[realm]); strings.Contains(body, "alice") {
				t.Fatalf("alice's session lives on after the admin API revoked her: %s", body)
			}
			for _, other := range realms[i+1:] {
				if _, body := m.get("s", "/"+other+"/", cookies[other]); !strings.Contains(body, "alice") {
					t.Fatalf("a revocation in realm %s ended alice's session in realm %s: %s", realm, other, body)
				}
			}
		})
	}
}

// An imported session is checked under the limits of the handlers of its
// realm: through the first handler, a session of another realm was
// refused by limits that are not its realm's.
func TestAdminImportUnderTheLimitsOfItsRealm(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `route {
		handle /narrow/* {
			session {
				store bolt {db:shared}
				realm narrow
				cookie narrowsid
				limits {
					keys 2
				}
			}
			reverse_proxy {up}
		}
		handle /wide/* {
			session {
				store bolt {db:shared}
				realm wide
				cookie widesid
			}
			reverse_proxy {up}
		}
	}`})
	line := func(realm string) (string, string) {
		id := session.NewID()
		rec := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}.NewRecord(clock.Now())
		rec.Values = map[string]string{"user": "alice", "cart": "apple", "theme": "dark"}
		rec.Realm = realm
		var b strings.Builder
		if err := transfer.Write(&b, store.Entry{Hash: session.HashID(id), Record: rec, Identity: "user"}); err != nil {
			t.Fatal(err)
		}
		return b.String(), realm + "sid=" + id
	}
	cases := []struct {
		realm  string
		status int
		want   string
	}{
		{"wide", http.StatusOK, `"imported":1`},
		{"narrow", http.StatusBadRequest, "over the limit of 2"},
	}
	for _, tc := range cases {
		t.Run(tc.realm, func(t *testing.T) {
			body, cookie := line(tc.realm)
			a := sessionAPIAs(t, http.MethodPost, "/session/import", "application/x-ndjson", body)
			if a.status != tc.status || !strings.Contains(string(a.body), tc.want) {
				t.Fatalf("import of a session of 3 keys in realm %s: %d %s, want %d %s", tc.realm, a.status, a.body, tc.status, tc.want)
			}
			_, got := m.get("s", "/"+tc.realm+"/", cookie)
			if imported := strings.Contains(got, "alice"); imported != (tc.status == http.StatusOK) {
				t.Fatalf("after the import, the session opens: %v: %s", imported, got)
			}
		})
	}
}

// Handlers of one store that fall back to different stores are migrated
// from each in turn, a page at a time, the cursor naming the store.
func TestAdminMigrateFromEveryFallbackStore(t *testing.T) {
	m := newMultiSite(t, "s")
	cookies := map[string]map[string]string{
		"a": seedBolt(t, m.expand("{db:old-a}"), "a", "asid", "a1", "a2"),
		"b": seedBolt(t, m.expand("{db:old-b}"), "b", "bsid", "b1", "b2", "b3"),
	}
	m.load([2]string{"s", `route {
		handle /a/* {
			session {
				store bolt {db:new}
				fallback_store bolt {db:old-a}
				realm a
				cookie asid
			}
			reverse_proxy {up}
		}
		handle /b/* {
			session {
				store bolt {db:new}
				fallback_store bolt {db:old-b}
				realm b
				cookie bsid
			}
			reverse_proxy {up}
		}
	}`})
	var total store.CopyStats
	from := map[string]bool{}
	for cursor, pages := "", 0; ; pages++ {
		if pages > 10 {
			t.Fatal("migrate does not end")
		}
		var page struct {
			store.CopyStats
			From, To   string
			NextCursor string `json:"next_cursor"`
		}
		sessionAPI(t, http.MethodPost, "/session/migrate?limit=1&cursor="+url.QueryEscape(cursor), "").decode(t, http.StatusOK, &page)
		total.Add(page.CopyStats)
		from[page.From] = true
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if total.Copied != 5 || len(from) != 2 {
		t.Fatalf("migrate did %+v from %v, want 5 sessions copied from two stores", total, from)
	}
	// The old stores go; every session is in the new one.
	m.load([2]string{"s", `route {
		handle /a/* {
			session {
				store bolt {db:new}
				realm a
				cookie asid
			}
			reverse_proxy {up}
		}
		handle /b/* {
			session {
				store bolt {db:new}
				realm b
				cookie bsid
			}
			reverse_proxy {up}
		}
	}`})
	for realm, users := range cookies {
		for user, cookie := range users {
			if _, body := m.get("s", "/"+realm+"/", cookie); !strings.Contains(body, user) {
				t.Errorf("the session of %s in realm %s does not open after the migration: %s", user, realm, body)
			}
		}
	}
}
