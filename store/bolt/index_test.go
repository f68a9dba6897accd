package bolt

import (
	"fmt"
	"maps"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// alike returns n hashes that share their first hashPrefixLen bytes, and
// so the short form of their index keys: what chance never makes, on
// purpose.
func alike(name string, n int) []session.Hash {
	hashes := make([]session.Hash, n)
	for i := range hashes {
		hashes[i] = session.HashID(name)
		last := session.HashID(fmt.Sprint(name, i))
		copy(hashes[i][hashPrefixLen:], last[hashPrefixLen:])
	}
	return hashes
}

// createAt starts a session under hash at now in realm.
func createAt(t *testing.T, s *Store, hash session.Hash, realm string, now time.Time, values map[string]string) {
	t.Helper()
	_, err := s.Update(t.Context(), store.Update{
		NewHash: &hash, Patch: &session.Patch{Set: maps.Clone(values)},
		Identity: "user", Realm: realm, Now: now, Timeouts: timeouts, Limits: limits,
	})
	if err != nil {
		t.Fatalf("creating %s: %v", hash.Short(), err)
	}
}

func wantLoads(t *testing.T, s *Store, now time.Time, hashes ...session.Hash) {
	t.Helper()
	for _, h := range hashes {
		if _, err := s.Load(t.Context(), h, now, timeouts); err != nil {
			t.Fatalf("Load of %s: %v", h.Short(), err)
		}
	}
}

func wantCountAt(t *testing.T, s *Store, now time.Time, want int) {
	t.Helper()
	if n, err := s.Count(t.Context(), now); err != nil || n != want {
		t.Fatalf("Count = %d, %v; want %d", n, err, want)
	}
}

func wantRevoked(t *testing.T, s *Store, realm, value string, want int) {
	t.Helper()
	if n, err := s.DeleteByIdentity(t.Context(), realm, "user", value); err != nil || n != want {
		t.Fatalf("DeleteByIdentity(%s, %s) = %d, %v; want %d", realm, value, n, err, want)
	}
}

// TestIndexSharedPrefix: records whose hashes share the prefix that ends
// their index keys keep one entry each, exact counts, and revocations and
// sweeps that touch only what they should. checkConsistent runs after
// every case.
func TestIndexSharedPrefix(t *testing.T) {
	alice := map[string]string{"user": "alice"}
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store, h []session.Hash)
	}{
		{"same deadline and identity: the second gets full keys", func(t *testing.T, s *Store, h []session.Hash) {
			createAt(t, s, h[0], "shop", base, alice)
			createAt(t, s, h[1], "shop", base, alice)
			wantFullKeys(t, s, h[1], true)
			wantCountAt(t, s, base, 2)
			wantRevoked(t, s, "shop", "alice", 2)
			wantCountAt(t, s, base, 0)
		}},
		{"the short keys freed are taken again", func(t *testing.T, s *Store, h []session.Hash) {
			createAt(t, s, h[0], "shop", base, alice)
			createAt(t, s, h[1], "shop", base, alice)
			if err := s.Delete(t.Context(), h[0]); err != nil {
				t.Fatal(err)
			}
			checkConsistent(t, s)
			createAt(t, s, h[2], "shop", base, alice)
			wantFullKeys(t, s, h[2], false)
			wantCountAt(t, s, base, 2)
			wantRevoked(t, s, "shop", "alice", 2)
		}},
		{"a touch of a session with full keys", func(t *testing.T, s *Store, h []session.Hash) {
			createAt(t, s, h[0], "shop", base, alice)
			createAt(t, s, h[1], "shop", base, alice)
			now := base.Add(2 * time.Minute)
			if _, err := s.Update(t.Context(), store.Update{Hash: h[1], HasHash: true, Identity: "user", Seen: "alice",
				Realm: "shop", Now: now, Timeouts: timeouts, Limits: limits}); err != nil {
				t.Fatal(err)
			}
			wantCountAt(t, s, now, 2)
			wantLoads(t, s, now, h[0], h[1])
		}},
		{"another user's session under the prefix is left alone", func(t *testing.T, s *Store, h []session.Hash) {
			createAt(t, s, h[0], "shop", base, alice)
			createAt(t, s, h[1], "shop", base.Add(time.Second), map[string]string{"user": "bob"})
			wantRevoked(t, s, "shop", "alice", 1)
			wantLoads(t, s, base, h[1])
			wantRevoked(t, s, "shop", "bob", 1)
		}},
		{"the same user's session in another realm keeps its entry", func(t *testing.T, s *Store, h []session.Hash) {
			createAt(t, s, h[0], "shop", base, alice)
			createAt(t, s, h[1], "admin", base.Add(time.Second), alice)
			createAt(t, s, h[2], "shop", base.Add(2*time.Second), alice)
			wantRevoked(t, s, "admin", "alice", 1)
			checkConsistent(t, s)
			wantRevoked(t, s, "shop", "alice", 2)
		}},
		{"a sweep removes the expired session, not the live one", func(t *testing.T, s *Store, h []session.Hash) {
			short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
			if _, err := s.Update(t.Context(), store.Update{NewHash: &h[0], Patch: &session.Patch{Set: alice},
				Identity: "user", Now: base, Timeouts: short, Limits: limits}); err != nil {
				t.Fatal(err)
			}
			createAt(t, s, h[1], "shop", base, alice)
			now := base.Add(5 * time.Minute)
			if n, err := s.Sweep(now); err != nil || n != 1 {
				t.Fatalf("Sweep = %d, %v; want 1", n, err)
			}
			wantLoads(t, s, now, h[1])
			wantCountAt(t, s, now, 1)
		}},
		{"forward records under the prefix", func(t *testing.T, s *Store, h []session.Hash) {
			createAt(t, s, h[0], "shop", base, alice)
			createAt(t, s, h[1], "shop", base, alice)
			for i, from := range h[:2] {
				u := store.Update{Hash: from, HasHash: true, NewHash: &h[2+i], Patch: &session.Patch{Renew: true},
					Identity: "user", Seen: "alice", Realm: "shop", Now: base, Timeouts: timeouts, Limits: limits}
				if _, err := s.Update(t.Context(), u); err != nil {
					t.Fatal(err)
				}
			}
			wantCountAt(t, s, base, 2)
			if n, err := s.Sweep(base.Add(session.ForwardTTL)); err != nil || n != 0 {
				t.Fatalf("Sweep of the forward records = %d, %v; want 0 sessions", n, err)
			}
			wantCountAt(t, s, base.Add(session.ForwardTTL), 2)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			defer s.Close()
			tc.run(t, s, alike(tc.name, 4))
			checkConsistent(t, s)
		})
	}
}

// TestIndexIdentityDigestCollision: two identities whose digests collide
// share the identity index's prefix; revoking one leaves the other's
// sessions and entries, whatever their hashes.
func TestIndexIdentityDigestCollision(t *testing.T) {
	digest := identityDigest
	t.Cleanup(func() { identityDigest = digest })
	identityDigest = func(key, value string) []byte {
		if value == "mallory" {
			value = "alice"
		}
		return digest(key, value)
	}
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("hash prefix shared %v", shared), func(t *testing.T) {
			s := openTest(t)
			defer s.Close()
			h := alike("digest", 2)
			if !shared {
				h[1] = session.HashID("another prefix")
			}
			createAt(t, s, h[0], "shop", base, map[string]string{"user": "alice"})
			createAt(t, s, h[1], "shop", base, map[string]string{"user": "mallory"})
			wantRevoked(t, s, "shop", "mallory", 1)
			checkConsistent(t, s)
			wantRevoked(t, s, "shop", "alice", 1)
			checkConsistent(t, s)
		})
	}
}

// wantFullKeys checks whether the session under hash has its index
// entries in the full form.
func wantFullKeys(t *testing.T, s *Store, hash session.Hash, full bool) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := buckets(tx)
		rec, identity, err := b.get(hash)
		if err != nil || rec == nil {
			return fmt.Errorf("session %s: %v, %v", hash.Short(), rec, err)
		}
		keys, _ := identityKeys(rec, identity, hash, false)
		for name, got := range map[string]bool{
			"expiry":   has(b.expiry, expiryKeys(rec, hash, false).full),
			"identity": has(b.identity, keys.full),
		} {
			if got != full {
				t.Errorf("session %s has a full-form %s entry: %v, want %v", hash.Short(), name, got, full)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIndexStaleEntries: entries that lead to no record of theirs, as a
// corrupt record leaves behind, go when a revocation or a sweep meets
// them, and leave the records they lead to alone.
func TestIndexStaleEntries(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	h := alike("stale", 3)
	createAt(t, s, h[0], "shop", base, map[string]string{"user": "bob"})
	bobs, _ := identityKeys(&session.Record{Values: map[string]string{"user": "bob"}}, "user", h[1], false)
	alices, _ := identityKeys(&session.Record{Values: map[string]string{"user": "alice"}}, "user", h[2], false)
	past := &session.Record{IdleDeadline: base, AbsoluteDeadline: base}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := buckets(tx)
		// Alice's entries lead to bob's session, which shares the prefix;
		// so does an expired entry.
		for _, e := range []struct {
			bucket *bbolt.Bucket
			key    []byte
		}{
			{b.identity, alices.short}, {b.identity, alices.full}, {b.identity, bobs.full},
			{b.expiry, expiryKeys(past, h[1], false).short},
		} {
			if err := e.bucket.Put(e.key, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, s, "shop", "alice", 0)
	if n, err := s.Sweep(base.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0", n, err)
	}
	wantLoads(t, s, base.Add(time.Minute), h[0])
	// Bob's stale full entry is for no record either: a revocation of bob
	// drops it and removes his session by its own.
	wantRevoked(t, s, "shop", "bob", 1)
	checkConsistent(t, s)
	for _, b := range [][]byte{bucketSessions, bucketExpiry, bucketIdentity} {
		if got := bucketLen(t, s, b); got != 0 {
			t.Errorf("bucket %s has %d entries, want none", b, got)
		}
	}
}

// TestIndexKeys pins the layouts, which files keep: a change needs a new
// codec version and the old layout still read.
func TestIndexKeys(t *testing.T) {
	hash := session.HashID("keys")
	rec := timeouts.NewRecord(base)
	rec.Values = map[string]string{"user": "alice"}
	fwd := rec.Clone()
	fwd.Successor = &hash
	ids, _ := identityKeys(rec, "user", hash, false)
	old, _ := identityKeys(rec, "user", hash, true)
	tests := []struct {
		name string
		key  []byte
		want int
	}{
		{"expiry, short", expiryKeys(rec, hash, false).short, 8 + 16},
		{"expiry, full", expiryKeys(rec, hash, false).full, 8 + 32},
		{"expiry of a forward record, short", expiryKeys(fwd, hash, false).short, 8 + 16 + 1},
		{"expiry of a forward record, full", expiryKeys(fwd, hash, false).full, 8 + 32 + 1},
		{"expiry, old layout", expiryKeys(rec, hash, true).full, 8 + 32},
		{"identity, short", ids.short, 1 + 8 + 16},
		{"identity, full", ids.full, 1 + 8 + 32},
		{"identity, old layout", old.full, 1 + 4 + 1 + 5 + 32},
	}
	for _, tc := range tests {
		if len(tc.key) != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.name, len(tc.key), tc.want)
		}
	}
	if old.short != nil || expiryKeys(rec, hash, true).short != nil {
		t.Error("a record of the old layout has a short-form key")
	}
	if !isSessionExpiryKey(expiryKeys(rec, hash, false).short) || isSessionExpiryKey(expiryKeys(fwd, hash, false).short) {
		t.Error("Count cannot tell a session's expiry entry from a forward record's by its length")
	}
}
