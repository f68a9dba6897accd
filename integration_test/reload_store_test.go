package integration_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestBoltFileSpellingsAcrossReload reloads a config that names its bolt
// file one way into one that names the same file another way: through a
// symlinked directory, a symlink to the file, or a symlinked directory
// whose subdirectory the first load created. The file is open already, so
// the reload must share it: a second open in the same process waits for
// bbolt's lock, which the process itself holds, and the reload fails after
// lock_timeout saying another process holds it. The sessions are the same
// data, so the admin API lists one store, under one name, whichever
// spelling loaded it.
func TestBoltFileSpellingsAcrossReload(t *testing.T) {
	cases := []struct {
		name string
		// first and second spell the same file; both get the test's
		// directory, which holds real/ and link -> real.
		first, second func(dir string) string
	}{
		{"symlinked directory",
			func(dir string) string { return filepath.Join(dir, "real", "s.db") },
			func(dir string) string { return filepath.Join(dir, "link", "s.db") }},
		{"symlinked directory first",
			func(dir string) string { return filepath.Join(dir, "link", "s.db") },
			func(dir string) string { return filepath.Join(dir, "real", "s.db") }},
		{"symlink to the file",
			func(dir string) string { return filepath.Join(dir, "real", "s.db") },
			func(dir string) string { return filepath.Join(dir, "real", "alias.db") }},
		{"directory created by the first load",
			func(dir string) string { return filepath.Join(dir, "link", "sub", "s.db") },
			func(dir string) string { return filepath.Join(dir, "real", "sub", "s.db") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "real"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("s.db", filepath.Join(dir, "real", "alias.db")); err != nil {
				t.Fatal(err)
			}
			storeLine := func(path string) string {
				return fmt.Sprintf("store bolt %s {\n\t\t\tlock_timeout 300ms\n\t\t}", path)
			}
			s := newSiteOn(t, storeLine(c.first(dir)), "")
			v := s.visitor()
			expectStatus(t, v.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			before := listStores(t)

			s.store = storeLine(c.second(dir))
			start := time.Now()
			s.load()
			if t.Failed() {
				t.Fatalf("the reload to %s failed after %s", c.second(dir), time.Since(start).Round(time.Millisecond))
			}
			expectUser(t, v, "alice")
			after := listStores(t)
			if len(after) != 1 || len(before) != 1 || after[0].Name != before[0].Name {
				t.Fatalf("stores before the reload %+v, after %+v: want one, named the same", before, after)
			}
		})
	}
}

// listStores returns GET /session/stores.
func listStores(t *testing.T) []apiStore {
	t.Helper()
	var stores []apiStore
	sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
	return stores
}

// TestLiveCountAfterTheFallbackStoreIsRemoved: once a reload has removed
// fallback_store (step 3 of a move, README "Moving to another store"),
// "the old one can go". The live_sessions gauge of the store must then
// count the store as the running config has it, not through the first
// config that named the store: that one still had the fallback, and
// counting through it opened the old store again, here recreating the
// bolt file the operator had removed, and taking its lock.
func TestLiveCountAfterTheFallbackStoreIsRemoved(t *testing.T) {
	dir := t.TempDir()
	newDB, oldDB := filepath.Join(dir, "new.db"), filepath.Join(dir, "old.db")
	s := newSiteOn(t, "store bolt "+oldDB, "")
	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: alice"), http.StatusOK)

	// Step 1: the new store, with the old one behind it.
	s.store = "store bolt " + newDB + "\n\t\tfallback_store bolt " + oldDB
	s.load()
	expectUser(t, v, "alice") // copied into the new store
	// Step 3: the fallback goes, and so does the old file.
	s.store = "store bolt " + newDB
	s.load()
	if err := os.Remove(oldDB); err != nil {
		t.Fatal(err)
	}

	gauge := fmt.Sprintf(`caddy_session_live_sessions{name="bolt:%s",store="bolt"}`, newDB)
	var live float64
	waitFor(t, 10*time.Second, func() bool { // the count runs in the background
		var ok bool
		live, ok = scrapeMetrics(t)[gauge]
		return ok
	})
	if live != 1 {
		t.Errorf("%s = %v, want 1", gauge, live)
	}
	if _, err := os.Stat(oldDB); err == nil {
		t.Fatalf("counting the live sessions opened the removed fallback store again: %s exists", oldDB)
	}
}

// TestFallbackStoreSpelledAsTheStoreIsRefused: a fallback_store that is
// the store itself under another spelling is refused at once, saying so,
// rather than waiting lock_timeout for a lock the process holds and then
// blaming another process.
func TestFallbackStoreSpelledAsTheStoreIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(dir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	caddytest.AssertLoadError(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store bolt %s {
			lock_timeout 200ms
		}
		fallback_store bolt %s {
			lock_timeout 200ms
		}
	}
	respond ok
}`, adminPort, freePort(t), filepath.Join(dir, "s.db"), filepath.Join(dir, "link", "s.db")), "caddyfile", "fallback_store is the store itself")
}
