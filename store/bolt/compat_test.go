package bolt

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// openV1 opens a copy of testdata/v1.db, a file written by the store of
// main before realms and forward records (codec version 1; see
// testdata/mkv1), with the current code.
func openV1(t *testing.T) *Store {
	t.Helper()
	return openFixture(t, "v1.db")
}

// openFixture opens a copy of the file testdata/name with the current code.
func openFixture(t *testing.T, name string) *Store {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatalf("opening a file of the previous layout: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The sessions in testdata/v1.db, created at base with timeouts, under
// session.HashID(name).
var v1Sessions = map[string]map[string]string{
	"v1:alice-laptop": {"user": "alice", "cart": "3"},
	"v1:alice-phone":  {"user": "alice"},
	"v1:bob":          {"user": "bob", "role": "admin"},
	"v1:anonymous":    {"cart": "7"},
	"v1:unindexed":    {"user": "alice"}, // written with no identity key
}

// now is when the tests of v1.db use its sessions, all live then.
var v1Now = base.Add(time.Minute)

// v1Update is an update of the version 1 session name at v1Now, in realm
// shop, by a request that saw seen.
func v1Update(name, seen string, patch *session.Patch) store.Update {
	return store.Update{Hash: session.HashID(name), HasHash: true, Patch: patch,
		Identity: "user", Seen: seen, Realm: "shop", Now: v1Now, Timeouts: timeouts, Limits: limits}
}

// TestVersion1File: sessions stored by the previous layout keep working
// after the upgrade.
func TestVersion1File(t *testing.T) {
	t.Run("load, count and list", testV1Read)
	t.Run("a write stamps the realm", testV1Write)
	t.Run("rotation", testV1Rotation)
	t.Run("revocation in any realm", testV1Revocation)
	t.Run("list by identity in any realm", testV1ListByIdentity)
	t.Run("sweep", testV1Sweep)
}

// testV1Read: the records load as sessions of no realm, count and list.
func testV1Read(t *testing.T) {
	s := openV1(t)
	for name, values := range v1Sessions {
		rec, err := s.Load(t.Context(), session.HashID(name), v1Now, timeouts)
		if err != nil {
			t.Fatalf("Load of %s: %v", name, err)
		}
		if !maps.Equal(rec.Values, values) || rec.Realm != "" || rec.Forwarded() || !rec.Created.Equal(base) {
			t.Fatalf("Load of %s = %+v, want %v of no realm, created at %s", name, rec, values, base)
		}
	}
	wantV1Count(t, s, len(v1Sessions))
	if entries, next, err := s.List(t.Context(), "", 100, v1Now); err != nil || len(entries) != len(v1Sessions) || next != "" {
		t.Fatalf("List = %d entries, %q, %v; want %d", len(entries), next, err, len(v1Sessions))
	}
	checkConsistent(t, s)
}

func wantV1Count(t *testing.T, s *Store, want int) {
	t.Helper()
	if n, err := s.Count(t.Context(), v1Now); err != nil || n != want {
		t.Fatalf("Count = %d, %v; want %d", n, err, want)
	}
}

func testV1Write(t *testing.T) {
	s := openV1(t)
	res, err := s.Update(t.Context(), v1Update("v1:alice-laptop", "alice", &session.Patch{Set: map[string]string{"cart": "4"}}))
	if err != nil || res.Record.Realm != "shop" || res.Record.Values["cart"] != "4" || res.Followed {
		t.Fatalf("update of a version 1 session: %+v, %v", res, err)
	}
	rec, err := s.Load(t.Context(), session.HashID("v1:alice-laptop"), v1Now, timeouts)
	if err != nil || rec.Realm != "shop" || rec.Values["cart"] != "4" {
		t.Fatalf("Load after the update: %+v, %v; want realm shop and cart 4", rec, err)
	}
	// Now of realm shop, the session is not admin's.
	u := v1Update("v1:alice-laptop", "alice", nil)
	u.Realm = "admin"
	if _, err := s.Update(t.Context(), u); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update from realm admin after shop wrote it: %v, want ErrNotFound", err)
	}
	checkConsistent(t, s)
}

// testV1Rotation: a rotation moves the session and leaves a forward
// record under its version 1 hash.
func testV1Rotation(t *testing.T) {
	s := openV1(t)
	bobNew := session.HashID("v2:bob")
	u := v1Update("v1:bob", "bob", &session.Patch{Renew: true})
	u.NewHash = &bobNew
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Hash != bobNew || res.Record.Values["role"] != "admin" || res.Record.Realm != "shop" {
		t.Fatalf("rotation of a version 1 session: %+v, %v", res, err)
	}
	rec, err := s.Load(t.Context(), session.HashID("v1:bob"), v1Now, timeouts)
	if err != nil || !rec.Forwarded() || *rec.Successor != bobNew {
		t.Fatalf("the old hash after the rotation: %+v, %v; want a forward record", rec, err)
	}
	wantV1Count(t, s, len(v1Sessions))
	checkConsistent(t, s)
}

// testV1Revocation: a revocation in any realm removes the version 1
// sessions of the identity, which are of no realm, but not those a realm
// has written since, nor those never indexed.
func testV1Revocation(t *testing.T) {
	s := openV1(t)
	if _, err := s.Update(t.Context(), v1Update("v1:alice-laptop", "alice", nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "admin", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity(admin, alice) = %d, %v; want 1, the phone's", n, err)
	}
	if _, err := s.Load(t.Context(), session.HashID("v1:alice-phone"), v1Now, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the legacy session of alice after the revocation: %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "shop", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity(shop, alice) = %d, %v; want 1, the laptop's", n, err)
	}
	if _, err := s.Load(t.Context(), session.HashID("v1:unindexed"), v1Now, timeouts); err != nil {
		t.Fatalf("the unindexed session: %v", err)
	}
	if err := s.Delete(t.Context(), session.HashID("v1:anonymous")); err != nil {
		t.Fatalf("Delete of a version 1 session: %v", err)
	}
	wantV1Count(t, s, 2) // bob's and the unindexed one
	checkConsistent(t, s)
}

// testV1ListByIdentity: the version 1 sessions of an identity, of no
// realm, are listed in any realm, but not the one never indexed.
func testV1ListByIdentity(t *testing.T) {
	s := openV1(t)
	for _, realm := range []string{"shop", "admin"} {
		wantListedAt(t, s, v1Now, realm, "alice", session.HashID("v1:alice-laptop"), session.HashID("v1:alice-phone"))
		wantListedAt(t, s, v1Now, realm, "bob", session.HashID("v1:bob"))
	}
	checkConsistent(t, s)
}

func testV1Sweep(t *testing.T) {
	s := openV1(t)
	if n, err := s.Sweep(base.Add(24 * time.Hour)); err != nil || n != len(v1Sessions) {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, len(v1Sessions))
	}
	for _, b := range [][]byte{bucketSessions, bucketExpiry, bucketIdentity} {
		if got := bucketLen(t, s, b); got != 0 {
			t.Errorf("bucket %s has %d entries after everything expired", b, got)
		}
	}
}

// TestVersion1FileIsVersion1 guards the test above: the file really holds
// records of the previous version, which a rewrite of testdata could lose.
func TestVersion1FileIsVersion1(t *testing.T) {
	s := openV1(t)
	all := dump(t, s)
	n := 0
	for k, v := range all {
		if len(k) > len("sessions/") && k[:len("sessions/")] == "sessions/" {
			n++
			if v[0] != codecVersion1 {
				t.Errorf("record %x is of version %d, want %d", k, v[0], codecVersion1)
			}
		}
	}
	if n != len(v1Sessions) {
		t.Fatalf("the file holds %d records, want %d", n, len(v1Sessions))
	}
}
