package bolt

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// testdata/v2.db was written by the store of main at 7442678 (codec
// version 2, index entries ending in the full 32-byte hash; see
// testdata/mkv2). Its sessions, under session.HashID(name), were created at
// base; alice-laptop was touched and bob rotated to bob-renewed a minute
// later, which left a forward record under v2:bob.
var (
	v2Now       = base.Add(90 * time.Second)
	v2CarolUser = "carol-" + strings.Repeat("x", 80) + "@example.com"
	v2Live      = map[string]struct {
		realm  string
		values map[string]string
	}{
		"v2:alice-laptop": {"shop", map[string]string{"user": "alice", "cart": "3"}},
		"v2:alice-phone":  {"admin", map[string]string{"user": "alice"}},
		"v2:bob-renewed":  {"shop", map[string]string{"user": "bob", "role": "admin"}},
		"v2:anonymous":    {"shop", map[string]string{"cart": "7"}},
		"v2:unindexed":    {"shop", map[string]string{"user": "alice"}}, // written with no identity key
		"v2:carol":        {"shop", map[string]string{"user": v2CarolUser}},
	}
	v2Forward = session.HashID("v2:bob")     // → v2:bob-renewed until base+3m
	v2Expired = session.HashID("v2:expired") // dave's, idle 30s: expired at v2Now
)

// v2Update is an update of the session name at v2Now in realm, by a
// request that saw seen.
func v2Update(name, realm, seen string, patch *session.Patch) store.Update {
	return store.Update{Hash: session.HashID(name), HasHash: true, Patch: patch,
		Identity: "user", Seen: seen, Realm: realm, Now: v2Now, Timeouts: timeouts, Limits: limits}
}

// TestVersion2File: sessions, forward records and index entries stored by
// the version before the denser layout keep working after the upgrade.
func TestVersion2File(t *testing.T) {
	tests := []struct {
		name string
		run  func(*testing.T, *Store)
	}{
		{"load, count and list", testV2Read},
		{"list by identity", testV2ListByIdentity},
		{"a write keeps the session", testV2Write},
		{"a forward record is followed", testV2Forward},
		{"revocation by identity", testV2Revocation},
		{"delete", testV2Delete},
		{"sweep", testV2Sweep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openFixture(t, "v2.db")
			tc.run(t, s)
			checkConsistent(t, s)
		})
	}
}

func testV2Read(t *testing.T, s *Store) {
	for name, want := range v2Live {
		rec, err := s.Load(t.Context(), session.HashID(name), v2Now, timeouts)
		if err != nil {
			t.Fatalf("Load of %s: %v", name, err)
		}
		if !maps.Equal(rec.Values, want.values) || rec.Realm != want.realm || rec.Forwarded() || !rec.Created.Equal(base) {
			t.Fatalf("Load of %s = %+v, want %v in realm %s, created at %s", name, rec, want.values, want.realm, base)
		}
	}
	fwd, err := s.Load(t.Context(), v2Forward, v2Now, timeouts)
	if err != nil || !fwd.Forwarded() || *fwd.Successor != session.HashID("v2:bob-renewed") {
		t.Fatalf("Load of the forward record = %+v, %v", fwd, err)
	}
	if _, err := s.Load(t.Context(), v2Expired, v2Now, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of the expired session: %v, want ErrNotFound", err)
	}
	wantV2Count(t, s, len(v2Live))
	entries, next, err := s.List(t.Context(), "", 100, v2Now)
	if err != nil || len(entries) != len(v2Live) || next != "" {
		t.Fatalf("List = %d entries, %q, %v; want %d", len(entries), next, err, len(v2Live))
	}
}

// testV2ListByIdentity: the sessions of an identity are listed through
// the old layout's entries (long values too), and through the new one's
// once rewritten.
func testV2ListByIdentity(t *testing.T, s *Store) {
	laptop, phone := session.HashID("v2:alice-laptop"), session.HashID("v2:alice-phone")
	wantListedAt(t, s, v2Now, "shop", "alice", laptop)
	wantListedAt(t, s, v2Now, "admin", "alice", phone)
	wantListedAt(t, s, v2Now, "shop", "bob", session.HashID("v2:bob-renewed"))
	wantListedAt(t, s, v2Now, "shop", v2CarolUser, session.HashID("v2:carol"))
	wantListedAt(t, s, v2Now, "shop", "dave")
	rewrite(t, s, "v2:alice-laptop")
	tablet := session.HashID("v3:alice-tablet")
	createAt(t, s, tablet, "admin", v2Now, map[string]string{"user": "alice"})
	wantListedAt(t, s, v2Now, "shop", "alice", laptop)
	wantListedAt(t, s, v2Now, "admin", "alice", phone, tablet)
}

func wantV2Count(t *testing.T, s *Store, want int) {
	t.Helper()
	if n, err := s.Count(t.Context(), v2Now); err != nil || n != want {
		t.Fatalf("Count = %d, %v; want %d", n, err, want)
	}
}

// testV2Write: a write rewrites the record in the current version and its
// index entries in the current layout; the session keeps its values and
// is still found by its identity.
func testV2Write(t *testing.T, s *Store) {
	laptop := session.HashID("v2:alice-laptop")
	res, err := s.Update(t.Context(), v2Update("v2:alice-laptop", "shop", "alice", &session.Patch{Set: map[string]string{"cart": "4"}}))
	if err != nil || res.Record.Values["cart"] != "4" || res.Record.Values["user"] != "alice" || !res.Record.Created.Equal(base) {
		t.Fatalf("update of a version 2 session: %+v, %v", res, err)
	}
	if v := dump(t, s)["sessions/"+string(laptop[:])]; v[0] != codecVersion {
		t.Fatalf("the written record is of version %d, want %d", v[0], codecVersion)
	}
	wantFullKeys(t, s, laptop, false)
	wantV2Count(t, s, len(v2Live))
	if n, err := s.DeleteByIdentity(t.Context(), "shop", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity(shop, alice) after the write = %d, %v; want 1", n, err)
	}
}

// rewrite writes the version 2 session name of realm shop again, which
// moves it to the current version and layout.
func rewrite(t *testing.T, s *Store, name string) {
	t.Helper()
	u := v2Update(name, "shop", v2Live[name].values["user"], &session.Patch{Set: map[string]string{"visits": "2"}})
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatalf("rewriting %s: %v", name, err)
	}
	hash := session.HashID(name)
	if v := dump(t, s)["sessions/"+string(hash[:])]; v[0] != codecVersion {
		t.Fatalf("%s rewritten in version %d, want %d", name, v[0], codecVersion)
	}
}

func testV2Forward(t *testing.T, s *Store) {
	res, err := s.Update(t.Context(), v2Update("v2:bob", "shop", "bob", &session.Patch{Set: map[string]string{"cart": "1"}}))
	if err != nil || !res.Followed || res.Hash != session.HashID("v2:bob-renewed") || res.Record.Values["cart"] != "1" {
		t.Fatalf("update through the version 2 forward record: %+v, %v", res, err)
	}
	wantV2Count(t, s, len(v2Live))
}

// testV2Revocation: a revocation finds an identity's sessions in both
// layouts, the old entries (long values too) and the new ones of sessions
// written since the upgrade.
func testV2Revocation(t *testing.T, s *Store) {
	rewrite(t, s, "v2:alice-laptop")
	tablet := session.HashID("v3:alice-tablet")
	createAt(t, s, tablet, "admin", v2Now, map[string]string{"user": "alice"})
	tests := []struct {
		realm, value string
		want         int
	}{
		{"shop", "alice", 1},  // the laptop's, rewritten; the unindexed one stays
		{"admin", "alice", 2}, // the phone's, of the old layout, and the tablet's
		{"shop", "bob", 1},
		{"shop", v2CarolUser, 1},
		{"shop", "dave", 1}, // expired but not yet swept: it goes too
	}
	for _, tc := range tests {
		if n, err := s.DeleteByIdentity(t.Context(), tc.realm, "user", tc.value); err != nil || n != tc.want {
			t.Fatalf("DeleteByIdentity(%s, %.10s) = %d, %v; want %d", tc.realm, tc.value, n, err, tc.want)
		}
	}
	wantV2Count(t, s, 2) // the anonymous and the unindexed ones
}

func testV2Delete(t *testing.T, s *Store) {
	if err := s.Delete(t.Context(), session.HashID("v2:carol")); err != nil {
		t.Fatalf("Delete of a version 2 session: %v", err)
	}
	if err := s.Delete(t.Context(), v2Forward); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of a version 2 forward record: %v, want ErrNotFound", err)
	}
	wantV2Count(t, s, len(v2Live)-1)
}

// testV2Sweep: the sweeper removes sessions of both layouts.
func testV2Sweep(t *testing.T, s *Store) {
	if n, err := s.Sweep(v2Now); err != nil || n != 1 {
		t.Fatalf("Sweep at %s = %d, %v; want 1, the expired one", v2Now, n, err)
	}
	wantV2Count(t, s, len(v2Live))
	// Half of them in the new layout.
	for _, name := range []string{"v2:alice-laptop", "v2:anonymous", "v2:carol"} {
		rewrite(t, s, name)
	}
	if n, err := s.Sweep(base.Add(24 * time.Hour)); err != nil || n != len(v2Live) {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, len(v2Live))
	}
	for _, b := range [][]byte{bucketSessions, bucketExpiry, bucketIdentity} {
		if got := bucketLen(t, s, b); got != 0 {
			t.Errorf("bucket %s has %d entries after everything expired", b, got)
		}
	}
}

// TestVersion2FileIsVersion2 guards the tests above: the file really holds
// records of version 2 and index entries of the old layout, which a rewrite
// of testdata could lose.
func TestVersion2FileIsVersion2(t *testing.T) {
	s := openFixture(t, "v2.db")
	records, expiry := 0, 0
	for k, v := range dump(t, s) {
		bucket, key, _ := strings.Cut(k, "/")
		switch bucket {
		case "sessions":
			records++
			if v[0] != 2 {
				t.Errorf("record %x is of version %d, want 2", key, v[0])
			}
		case "expiry":
			expiry++
			if len(key) != 8+32 && len(key) != 8+32+1 {
				t.Errorf("expiry entry %x is not a deadline and a full hash", key)
			}
		}
	}
	if want := len(v2Live) + 2; records != want || expiry != want {
		t.Fatalf("the file holds %d records and %d expiry entries, want %d", records, expiry, want)
	}
}
