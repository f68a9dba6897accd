package integration_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// TestWriteInTheOldStoreWhileItsSessionIsCopied: a move between stores
// (fallback_store) with a second site of the realm still on the old
// store. A copy of a session into the new store (caddy session migrate,
// or a request of the new store's site that finds it only in the old
// one) reads the session from the old store, then imports what it read.
// A write through the old store's site in between lands in the old store
// only: the relay that carries such writes to the new store's copy finds
// no copy yet. The copy must not go on without it: a key deleted or
// changed there (a role taken away) must not come back through the new
// store's site, and neither must flash values already handed over there.
func TestWriteInTheOldStoreWhileItsSessionIsCopied(t *testing.T) {
	writes := []struct {
		name    string
		command []string
		// want is the session the new store's site must see afterwards.
		want map[string]string
	}{
		{"a key changed", []string{"X-Session-Set-Role: guest"},
			map[string]string{"user": "alice", "role": "guest", "cart": "apple"}},
		{"a key deleted", []string{"X-Session-Delete: role"},
			map[string]string{"user": "alice", "cart": "apple"}},
		{"a key added", []string{"X-Session-Set-Note: hello"},
			map[string]string{"user": "alice", "role": "admin", "cart": "apple", "note": "hello"}},
		{"keys changed and deleted at once", []string{"X-Session-Set-Cart: pear", "X-Session-Delete: role"},
			map[string]string{"user": "alice", "cart": "pear"}},
	}
	copies := []struct {
		name string
		// copyIt copies the session of sid into the new store.
		copyIt func(t *testing.T, onNew *site, newStore, sid string)
	}{
		{"caddy session migrate", func(t *testing.T, _ *site, newStore, _ string) {
			var v map[string]any
			sessionAPI(t, http.MethodPost, "/session/migrate?store="+url.QueryEscape(newStore), "").decode(t, http.StatusOK, &v)
			if v["copied"] != float64(1) {
				t.Fatalf("migrate did %v, want the session copied", v)
			}
		}},
		{"first use on the new store's site", func(t *testing.T, onNew *site, _ string, sid string) {
			expectUser(t, &visitor{site: onNew, sid: sid}, "alice")
		}},
	}
	stores := []struct {
		name string
		line func(t *testing.T, dir string) (line, name string)
	}{
		{"bolt", func(t *testing.T, dir string) (string, string) {
			db := filepath.Join(dir, "new.db")
			return "store bolt " + db, "bolt:" + db
		}},
		{"redis", func(t *testing.T, _ string) (string, string) {
			srv := redistest.Start(t)
			return "store redis " + srv.URL(), "redis:" + srv.Addr()
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, cp := range copies {
				for _, w := range writes {
					t.Run(cp.name+"/"+w.name, func(t *testing.T) {
						dir, err := filepath.EvalSymlinks(t.TempDir())
						if err != nil {
							t.Fatal(err)
						}
						oldDB := filepath.Join(dir, "old.db")
						newLine, newName := st.line(t, dir)
						up := startUpstream(t)
						onOld := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t)}
						onOld.tester.Client.Jar = nil
						onNew := &site{t: t, tester: onOld.tester, port: freePort(t)}
						onOld.reload(fmt.Sprintf(`{
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
		%s
		fallback_store bolt %s
		realm app
	}
	reverse_proxy %s
}
`, adminPort, onOld.port, oldDB, up.addr(), onNew.port, newLine, oldDB, up.addr()))
						newStore := storeNamed(t, newName)

						v := onOld.visitor()
						v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Role: admin", "X-Session-Set-Cart: apple")
						if v.sid == "" {
							t.Fatal("the login on the old store's site issued no session cookie")
						}
						sid := v.sid
						hash := session.HashID(sid).String()

						// Held between the copy's read of the old store and
						// its import into the new one: the session is
						// written through the old store's site.
						var wrote atomic.Bool
						hook := func(hashes []string) {
							if !slices.Contains(hashes, hash) || !wrote.CompareAndSwap(false, true) {
								return
							}
							expectStatus(t, (&visitor{site: onOld, sid: sid}).get("/write", w.command...), http.StatusOK)
						}
						testhook.CopyListed.Store(&hook)
						t.Cleanup(func() { testhook.CopyListed.Store(nil) })

						cp.copyIt(t, onNew, newStore, sid)
						testhook.CopyListed.Store(nil)
						if !wrote.Load() {
							t.Fatal("the copy never read the session from the old store: the test drove nothing")
						}

						for _, s := range []*site{onOld, onNew} {
							which := "the old store's site"
							if s == onNew {
								which = "the new store's site"
							}
							got := map[string]string{}
							for k, val := range (&visitor{site: s, sid: sid}).get("/look").session() {
								got[k] = val
							}
							want := map[string]string{}
							for k, val := range w.want {
								want["X-Session-"+titleKey(k)] = val
							}
							if len(got) != len(want) {
								t.Fatalf("%s sees %v after a write through the old store's site during the copy, want %v: the copy must carry the write", which, got, want)
							}
							for k, val := range want {
								if got[k] != val {
									t.Fatalf("%s sees %v after a write through the old store's site during the copy, want %v: the copy must carry the write", which, got, want)
								}
							}
						}
					})
				}
			}
		})
	}
}

// storeNamed returns the name under which the admin API lists the store
// whose name is or ends with name (a Redis store is named by its URL).
func storeNamed(t *testing.T, name string) string {
	t.Helper()
	var stores []apiStore
	sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
	var names []string
	for _, s := range stores {
		if s.Name == name || s.Backend == "redis" && name[:6] == "redis:" {
			return s.Name
		}
		names = append(names, s.Name)
	}
	t.Fatalf("no store %s among %v", name, names)
	return ""
}

// titleKey is key as the upstream sees its header: X-Session-<Key>.
func titleKey(k string) string {
	return http.CanonicalHeaderKey(k)
}
