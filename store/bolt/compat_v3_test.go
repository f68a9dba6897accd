package bolt

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// testdata/v3.db was written by the store of main at c069f78 (codec
// version 3, before the session's metadata and version 4; see
// testdata/mkv3). Its sessions were created at base; alice-laptop was
// touched and bob rotated to bob-renewed a minute later, which left a
// forward record under v3:bob. alice-twin shares the laptop's identity and
// the first 16 bytes of its hash, and was created with the same deadline,
// so its index entries are in the full form.
var (
	v3Now       = base.Add(90 * time.Second)
	v3CarolUser = "carol-" + strings.Repeat("x", 80) + "@example.com"
	v3Twin      = twinHash("v3:alice-laptop")
	v3Live      = map[session.Hash]struct {
		realm  string
		values map[string]string
	}{
		session.HashID("v3:alice-laptop"): {"shop", map[string]string{"user": "alice", "cart": "3"}},
		v3Twin:                            {"shop", map[string]string{"user": "alice", "cart": "3"}},
		session.HashID("v3:alice-phone"):  {"admin", map[string]string{"user": "alice"}},
		session.HashID("v3:bob-renewed"):  {"shop", map[string]string{"user": "bob", "role": "admin"}},
		session.HashID("v3:anonymous"):    {"shop", map[string]string{"cart": "7"}},
		session.HashID("v3:unindexed"):    {"shop", map[string]string{"user": "alice"}}, // written with no identity key
		session.HashID("v3:carol"):        {"shop", map[string]string{"user": v3CarolUser}},
	}
	v3Forward = session.HashID("v3:bob")     // → v3:bob-renewed until base+3m
	v3Expired = session.HashID("v3:expired") // dave's, idle 30s: expired at v3Now
)

// twinHash is session.HashID(name) with the last 16 bytes of another
// hash, as testdata/mkv3 makes it.
func twinHash(name string) session.Hash {
	h := session.HashID(name)
	other := session.HashID(name + ":twin")
	copy(h[hashPrefixLen:], other[hashPrefixLen:])
	return h
}

// v3Update is an update at v3Now in realm, by a request that saw seen.
func v3Update(hash session.Hash, realm, seen string, patch *session.Patch) store.Update {
	return store.Update{Hash: hash, HasHash: true, Patch: patch,
		Identity: "user", Seen: seen, Realm: realm, Now: v3Now, Timeouts: timeouts, Limits: limits}
}

// TestVersion3File: sessions, forward records and index entries stored by
// the version before the session's metadata keep working after the
// upgrade, and read as sessions without metadata.
func TestVersion3File(t *testing.T) {
	tests := []struct {
		name string
		run  func(*testing.T, *Store)
	}{
		{"load, count and list", testV3Read},
		{"list by identity", testV3ListByIdentity},
		{"a write keeps the session and its version", testV3Write},
		{"metadata moves a record to version 4", testV3Metadata},
		{"a forward record is followed", testV3Forward},
		{"revocation by identity", testV3Revocation},
		{"sweep", testV3Sweep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openFixture(t, "v3.db")
			tc.run(t, s)
			checkConsistent(t, s)
		})
	}
}

func testV3Read(t *testing.T, s *Store) {
	for h, want := range v3Live {
		rec, err := s.Load(t.Context(), h, v3Now, timeouts)
		if err != nil {
			t.Fatalf("Load of %s: %v", h.Short(), err)
		}
		if !maps.Equal(rec.Values, want.values) || rec.Realm != want.realm || rec.Forwarded() || !rec.Created.Equal(base) {
			t.Fatalf("Load of %s = %+v, want %v in realm %s, created at %s", h.Short(), rec, want.values, want.realm, base)
		}
		if rec.Remembered || rec.UserAgent != "" || rec.Flash != nil {
			t.Fatalf("Load of %s: metadata %v, %q, %#v; want none", h.Short(), rec.Remembered, rec.UserAgent, rec.Flash)
		}
	}
	fwd, err := s.Load(t.Context(), v3Forward, v3Now, timeouts)
	if err != nil || !fwd.Forwarded() || *fwd.Successor != session.HashID("v3:bob-renewed") {
		t.Fatalf("Load of the forward record = %+v, %v", fwd, err)
	}
	if _, err := s.Load(t.Context(), v3Expired, v3Now, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of the expired session: %v, want ErrNotFound", err)
	}
	wantCountAt(t, s, v3Now, len(v3Live))
	entries, next, err := s.List(t.Context(), "", 100, v3Now)
	if err != nil || len(entries) != len(v3Live) || next != "" {
		t.Fatalf("List = %d entries, %q, %v; want %d", len(entries), next, err, len(v3Live))
	}
}

// wantListedAt checks that ListByIdentity lists exactly hashes.
func wantListedAt(t *testing.T, s *Store, now time.Time, realm, value string, hashes ...session.Hash) {
	t.Helper()
	entries, err := s.ListByIdentity(t.Context(), realm, "user", value, now)
	if err != nil {
		t.Fatalf("ListByIdentity(%s, %.10s): %v", realm, value, err)
	}
	got := make([]session.Hash, len(entries))
	for i, e := range entries {
		got[i] = e.Hash
	}
	slices.SortFunc(hashes, func(a, b session.Hash) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(got, hashes) {
		t.Fatalf("ListByIdentity(%s, %.10s) = %d sessions %v, want %d %v", realm, value, len(got), got, len(hashes), hashes)
	}
}

// testV3ListByIdentity: the sessions of the identity, found through index
// entries of both forms, and not the forward record, the expired session
// nor the one never indexed.
func testV3ListByIdentity(t *testing.T, s *Store) {
	wantFullKeys(t, s, v3Twin, true)
	laptop := session.HashID("v3:alice-laptop")
	wantListedAt(t, s, v3Now, "shop", "alice", laptop, v3Twin)
	wantListedAt(t, s, v3Now, "admin", "alice", session.HashID("v3:alice-phone"))
	wantListedAt(t, s, v3Now, "shop", "bob", session.HashID("v3:bob-renewed"))
	wantListedAt(t, s, v3Now, "shop", v3CarolUser, session.HashID("v3:carol"))
	wantListedAt(t, s, v3Now, "shop", "dave")
	wantListedAt(t, s, base, "shop", "dave", v3Expired)
}

// testV3Write: a write keeps the session in version 3, which it has no
// metadata for.
func testV3Write(t *testing.T, s *Store) {
	res, err := s.Update(t.Context(), v3Update(v3Twin, "shop", "alice", &session.Patch{Set: map[string]string{"cart": "4"}}))
	if err != nil || res.Record.Values["cart"] != "4" || !res.Record.Created.Equal(base) {
		t.Fatalf("update of a version 3 session: %+v, %v", res, err)
	}
	if v := dump(t, s)["sessions/"+string(v3Twin[:])]; v[0] != codecVersion {
		t.Fatalf("the written record is of version %d, want %d", v[0], codecVersion)
	}
	wantCountAt(t, s, v3Now, len(v3Live))
	wantListedAt(t, s, v3Now, "shop", "alice", session.HashID("v3:alice-laptop"), v3Twin)
}

// testV3Metadata: a version 3 session given metadata is written in
// version 4, keeps its index entries, and keeps the metadata through a
// write; dropping it again writes version 3.
func testV3Metadata(t *testing.T, s *Store) {
	laptop := session.HashID("v3:alice-laptop")
	rec, err := s.Load(t.Context(), laptop, v3Now, timeouts)
	if err != nil {
		t.Fatal(err)
	}
	rec.Remembered, rec.UserAgent, rec.Flash = true, "curl/8.5.0", map[string]string{"notice": "hi"}
	if err := s.Put(t.Context(), []store.Entry{{Hash: laptop, Record: rec}}, "user"); err != nil {
		t.Fatal(err)
	}
	version := func() byte { return dump(t, s)["sessions/"+string(laptop[:])][0] }
	if v := version(); v != codecVersionMeta {
		t.Fatalf("a record with metadata is of version %d, want %d", v, codecVersionMeta)
	}
	res, err := s.Update(t.Context(), v3Update(laptop, "shop", "alice", &session.Patch{Set: map[string]string{"cart": "5"}}))
	if err != nil || !res.Record.Remembered || res.Record.UserAgent != "curl/8.5.0" || res.Record.Flash["notice"] != "hi" {
		t.Fatalf("update of a version 4 session: %+v, %v", res, err)
	}
	entries, err := s.ListByIdentity(t.Context(), "shop", "user", "alice", v3Now)
	if err != nil || len(entries) != 2 {
		t.Fatalf("ListByIdentity = %+v, %v", entries, err)
	}
	for _, e := range entries {
		if e.Hash == laptop && (!e.Record.Remembered || e.Record.Values["cart"] != "5") {
			t.Fatalf("the listed laptop session: %+v", e.Record)
		}
	}
	rec = res.Record.Clone()
	rec.Remembered, rec.UserAgent, rec.Flash = false, "", nil
	if err := s.Put(t.Context(), []store.Entry{{Hash: laptop, Record: rec}}, "user"); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != codecVersion {
		t.Fatalf("a record without metadata again is of version %d, want %d", v, codecVersion)
	}
}

func testV3Forward(t *testing.T, s *Store) {
	res, err := s.Update(t.Context(), v3Update(v3Forward, "shop", "bob", &session.Patch{Set: map[string]string{"cart": "1"}}))
	if err != nil || !res.Followed || res.Hash != session.HashID("v3:bob-renewed") || res.Record.Values["cart"] != "1" {
		t.Fatalf("update through the version 3 forward record: %+v, %v", res, err)
	}
	if err := s.Delete(t.Context(), v3Forward); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of a version 3 forward record: %v, want ErrNotFound", err)
	}
	wantCountAt(t, s, v3Now, len(v3Live))
}

func testV3Revocation(t *testing.T, s *Store) {
	tests := []struct {
		realm, value string
		want         int
	}{
		{"shop", "alice", 2}, // the laptop's and its twin's; the unindexed one stays
		{"admin", "alice", 1},
		{"shop", "bob", 1},
		{"shop", v3CarolUser, 1},
		{"shop", "dave", 1}, // expired but not yet swept: it goes too
	}
	for _, tc := range tests {
		if n, err := s.DeleteByIdentity(t.Context(), tc.realm, "user", tc.value); err != nil || n != tc.want {
			t.Fatalf("DeleteByIdentity(%s, %.10s) = %d, %v; want %d", tc.realm, tc.value, n, err, tc.want)
		}
	}
	wantCountAt(t, s, v3Now, 2) // the anonymous and the unindexed ones
}

func testV3Sweep(t *testing.T, s *Store) {
	if n, err := s.Sweep(v3Now); err != nil || n != 1 {
		t.Fatalf("Sweep at %s = %d, %v; want 1, the expired one", v3Now, n, err)
	}
	wantCountAt(t, s, v3Now, len(v3Live))
	if n, err := s.Sweep(base.Add(24 * time.Hour)); err != nil || n != len(v3Live) {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, len(v3Live))
	}
	for _, b := range [][]byte{bucketSessions, bucketExpiry, bucketIdentity} {
		if got := bucketLen(t, s, b); got != 0 {
			t.Errorf("bucket %s has %d entries after everything expired", b, got)
		}
	}
}

// TestVersion3FileIsVersion3 guards the tests above: the file really holds
// records of version 3, with index entries in both forms, which a rewrite
// of testdata could lose.
func TestVersion3FileIsVersion3(t *testing.T) {
	s := openFixture(t, "v3.db")
	records, short, full := 0, 0, 0
	for k, v := range dump(t, s) {
		bucket, key, _ := strings.Cut(k, "/")
		switch bucket {
		case "sessions":
			records++
			if v[0] != 3 {
				t.Errorf("record %x is of version %d, want 3", key, v[0])
			}
		case "expiry", "identity":
			switch len(key) - map[string]int{"expiry": 8, "identity": 1 + identityDigestLen}[bucket] {
			case hashPrefixLen, hashPrefixLen + 1:
				short++
			case len(session.Hash{}), len(session.Hash{}) + 1:
				full++
			default:
				t.Errorf("%s entry %x is of no layout of version 3", bucket, key)
			}
		}
	}
	if want := len(v3Live) + 2; records != want {
		t.Fatalf("the file holds %d records, want %d", records, want)
	}
	if full != 2 || short == 0 {
		t.Fatalf("the file holds %d short and %d full index entries, want the twin's two full ones", short, full)
	}
}
