package redis

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// writeLayout1 writes a session the way the store wrote it before realms
// and forward records (layout version 1 as of main at 9d6db837): the
// hash's fields by raw HSET, its TTL, its entry in the index of sessions
// and, if indexed, in its identity set. Nothing of the current code is
// used, so a change of encode cannot hide a break with stored sessions.
func writeLayout1(t *testing.T, s *Store, name, identity string, values map[string]string) session.Hash {
	t.Helper()
	h := session.HashID(name)
	ns := func(d time.Duration) string { return strconv.FormatInt(base.Add(d).UnixNano(), 10) }
	fields := []string{
		":v", "1",
		":created", ns(0),
		":seen", ns(0),
		":idle", ns(30 * time.Minute),
		":absolute", ns(12 * time.Hour),
		":rev", "1",
	}
	if identity != "" {
		fields = append(fields, ":identity", identity)
	}
	for k, v := range values {
		fields = append(fields, k, v)
	}
	key := s.prefix + "{" + h.String() + "}"
	do(t, s, "HSET", key, fields...)
	do(t, s, "PEXPIRE", key, "1800000")
	do(t, s, "ZADD", s.prefix+"sessions", "0", h.String())
	if v, ok := values[identity]; ok && identity != "" {
		sum := sha256.Sum256([]byte(v))
		set := s.prefix + "identity:" + identity + ":" + hex.EncodeToString(sum[:])
		do(t, s, "SADD", set, h.String())
		do(t, s, "PEXPIRE", set, "46800000")
	}
	return h
}

// layout1 are the sessions the layout 1 tests write, all with identity
// key "user".
var layout1 = map[string]map[string]string{
	"laptop": {"user": "alice", "cart": "3"},
	"phone":  {"user": "alice"},
	"bob":    {"user": "bob", "role": "admin"},
	"anon":   {"cart": "7"},
}

// layout1Now is when the layout 1 tests use the sessions, all live then.
var layout1Now = base.Add(time.Minute)

// openLayout1 opens a store on b holding the sessions of layout1 as the
// previous code wrote them, and returns it with their hashes.
func openLayout1(t *testing.T, b backend) (*Store, map[string]session.Hash) {
	t.Helper()
	s := b.open(t)
	hashes := map[string]session.Hash{}
	for name, values := range layout1 {
		hashes[name] = writeLayout1(t, s, name, "user", values)
	}
	return s, hashes
}

// layout1Update is an update in realm shop at layout1Now.
func layout1Update(hash session.Hash, seen string, patch *session.Patch) store.Update {
	return store.Update{Hash: hash, HasHash: true, Patch: patch,
		Identity: "user", Seen: seen, Realm: "shop", Now: layout1Now, Timeouts: timeouts, Limits: limits}
}

// TestLayout1Sessions: sessions stored by the previous code keep working
// after the upgrade.
func TestLayout1Sessions(t *testing.T) {
	t.Parallel()
	b := standalone(t)
	t.Run("load, count and list", func(t *testing.T) { testLayout1Read(t, b) })
	t.Run("a write stamps the realm", func(t *testing.T) { testLayout1Write(t, b) })
	t.Run("rotation", func(t *testing.T) { testLayout1Rotation(t, b) })
	t.Run("revocation in any realm", func(t *testing.T) { testLayout1Revocation(t, b) })
}

// testLayout1Read: they load as sessions of no realm, count and list.
func testLayout1Read(t *testing.T, b backend) {
	s, hashes := openLayout1(t, b)
	for name, values := range layout1 {
		rec, err := s.Load(t.Context(), hashes[name], layout1Now, timeouts)
		if err != nil || !maps.Equal(rec.Values, values) || rec.Realm != "" || rec.Forwarded() || !rec.Created.Equal(base) {
			t.Fatalf("Load of %s: %+v, %v; want %v of no realm", name, rec, err, values)
		}
	}
	if n, err := s.Count(t.Context(), layout1Now); err != nil || n != len(layout1) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(layout1))
	}
	if entries, _, err := s.List(t.Context(), "", 10, layout1Now); err != nil || len(entries) != len(layout1) {
		t.Fatalf("List = %d entries, %v; want %d", len(entries), err, len(layout1))
	}
	checkConsistent(t, s)
}

// testLayout1Write: a write stamps the realm and keeps the rest.
func testLayout1Write(t *testing.T, b backend) {
	s, hashes := openLayout1(t, b)
	u := layout1Update(hashes["laptop"], "alice", &session.Patch{Set: map[string]string{"cart": "4"}})
	if res, err := s.Update(t.Context(), u); err != nil || res.Record.Realm != "shop" {
		t.Fatalf("update of a layout 1 session: %+v, %v", res, err)
	}
	fields := hgetall(t, s, s.SessionKey(hashes["laptop"]))
	if fields[fieldRealm] != "shop" || fields["cart"] != "4" || fields["user"] != "alice" || fields[fieldVersion] != "1" || fields[fieldRev] != "2" {
		t.Fatalf("the layout 1 session after a write: %v", fields)
	}
	checkConsistent(t, s)
}

// testLayout1Rotation: a rotation leaves a forward record.
func testLayout1Rotation(t *testing.T, b backend) {
	s, hashes := openLayout1(t, b)
	bobNew := session.HashID("bob-new")
	u := layout1Update(hashes["bob"], "bob", &session.Patch{Renew: true})
	u.NewHash = &bobNew
	if res, err := s.Update(t.Context(), u); err != nil || res.Hash != bobNew || res.Record.Values["role"] != "admin" {
		t.Fatalf("rotation of a layout 1 session: %+v, %v", res, err)
	}
	if rec, err := s.Load(t.Context(), hashes["bob"], layout1Now, timeouts); err != nil || !rec.Forwarded() || *rec.Successor != bobNew {
		t.Fatalf("the old hash after the rotation: %+v, %v", rec, err)
	}
	if n, err := s.Count(t.Context(), layout1Now); err != nil || n != len(layout1) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(layout1))
	}
	checkConsistent(t, s)
}

// testLayout1Revocation: the untouched session of alice is of no realm and
// goes in any realm; the one stamped shop only in shop.
func testLayout1Revocation(t *testing.T, b backend) {
	s, hashes := openLayout1(t, b)
	if _, err := s.Update(t.Context(), layout1Update(hashes["laptop"], "alice", nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "admin", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity(admin, alice) = %d, %v; want 1, the phone's", n, err)
	}
	if _, err := s.Load(t.Context(), hashes["phone"], layout1Now, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the phone's session after the revocation: %v", err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "shop", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity(shop, alice) = %d, %v; want 1, the laptop's", n, err)
	}
	if err := s.Delete(t.Context(), hashes["anon"]); err != nil {
		t.Fatalf("Delete of a layout 1 session: %v", err)
	}
	if n, err := s.Count(t.Context(), layout1Now); err != nil || n != 1 {
		t.Fatalf("Count at the end = %d, %v; want 1 (bob's)", n, err)
	}
	checkConsistent(t, s)
}

// TestForwardRecordInIndexIsSkipped: a previous version's index of all
// sessions can hold the old hash of a rotation (on Cluster, a crash
// between its steps), where a forward record now is. Count and List skip
// it.
func TestForwardRecordInIndexIsSkipped(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	old := create(t, s, "old", base, timeouts, map[string]string{"user": "alice"})
	renewed := session.HashID("renewed")
	if _, err := s.Update(t.Context(), store.Update{Hash: old, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
		Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	do(t, s, "ZADD", s.legacyIndexKey(), "0", old.String())
	if n, err := s.Count(t.Context(), base); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
	entries, _, err := s.List(t.Context(), "", 10, base)
	if err != nil || len(entries) != 1 || entries[0].Hash != renewed {
		t.Fatalf("List = %+v, %v; want only the renewed session", entries, err)
	}
}

// writePrevious writes a session the way main at c069f78 wrote it, before
// the session's metadata (layout 1 with realms and the bucketed index):
// the hash's fields by raw HSET, its TTL and its index entry. Nothing of
// the current code is used, so a change of encode or of the index cannot
// hide a break with stored sessions.
func writePrevious(t *testing.T, s *Store, name, realm string, values map[string]string) session.Hash {
	t.Helper()
	h := session.HashID(name)
	ns := func(d time.Duration) string { return strconv.FormatInt(base.Add(d).UnixNano(), 10) }
	fields := []string{
		":v", "1",
		":created", ns(0),
		":seen", ns(0),
		":idle", ns(30 * time.Minute),
		":absolute", ns(12 * time.Hour),
		":identity", "user",
		":realm", realm,
		":rev", "1",
	}
	for k, v := range values {
		fields = append(fields, k, v)
	}
	key := s.prefix + "{" + h.String() + "}"
	do(t, s, "HSET", key, fields...)
	do(t, s, "PEXPIRE", key, "1800000")
	sum := sha256.Sum256([]byte("user\x00" + values["user"]))
	bucket := fmt.Sprintf("%six:%03x", s.prefix, (int(sum[0])<<8|int(sum[1]))>>4)
	score := strconv.FormatInt(base.Add(30*time.Minute).UnixMicro(), 10)
	do(t, s, "ZADD", bucket, score, string(h[:])+string(sum[:8]))
	return h
}

// TestPreviousVersionSessions: sessions written before the session's
// metadata read as sessions without it, are listed by identity, and keep
// their hash as it was, with no metadata field, through a write.
func TestPreviousVersionSessions(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	laptop := writePrevious(t, s, "laptop", "shop", map[string]string{"user": "alice", "cart": "3"})
	phone := writePrevious(t, s, "phone", "admin", map[string]string{"user": "alice"})
	checkConsistent(t, s)
	for _, h := range []session.Hash{laptop, phone} {
		rec, err := s.Load(t.Context(), h, layout1Now, timeouts)
		if err != nil || rec.Remembered || rec.UserAgent != "" || rec.Flash != nil || rec.Values["user"] != "alice" {
			t.Fatalf("Load of %s: %+v, %v; want alice's session without metadata", h.Short(), rec, err)
		}
	}
	entries, err := s.ListByIdentity(t.Context(), "shop", "user", "alice", layout1Now)
	if err != nil || len(entries) != 1 || entries[0].Hash != laptop || entries[0].Record.Values["cart"] != "3" {
		t.Fatalf("ListByIdentity(shop, alice) = %+v, %v; want the laptop's", entries, err)
	}
	before := hgetall(t, s, s.SessionKey(laptop))
	if _, err := s.Update(t.Context(), layout1Update(laptop, "alice", &session.Patch{Set: map[string]string{"cart": "4"}})); err != nil {
		t.Fatal(err)
	}
	after := hgetall(t, s, s.SessionKey(laptop))
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("a write added field %q to a session without metadata", k)
		}
	}
	checkConsistent(t, s)
}

// TestLayout1ListByIdentity: the sessions of layout 1 are listed by
// identity in any realm, their index entries moved first.
func TestLayout1ListByIdentity(t *testing.T) {
	t.Parallel()
	s, hashes := openLayout1(t, standalone(t))
	entries, err := s.ListByIdentity(t.Context(), "shop", "user", "alice", layout1Now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[session.Hash]bool{}
	for _, e := range entries {
		got[e.Hash] = true
	}
	if len(entries) != 2 || !got[hashes["laptop"]] || !got[hashes["phone"]] {
		t.Fatalf("ListByIdentity(shop, alice) = %d sessions, want the laptop's and the phone's", len(entries))
	}
	if entries, err := s.ListByIdentity(t.Context(), "admin", "user", "bob", layout1Now); err != nil || len(entries) != 1 || entries[0].Hash != hashes["bob"] {
		t.Fatalf("ListByIdentity(admin, bob) = %+v, %v; want bob's", entries, err)
	}
	checkConsistent(t, s)
}
