package storetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The tests of ListByIdentity: it lists what DeleteByIdentity would
// remove, live sessions only.

// listByIdentity calls ListByIdentity and checks what holds of every
// listing: in hash order, each session once, each a live session of the
// identity, as Load has it.
func listByIdentity(t *testing.T, s store.Store, realm, key, value string, now time.Time) []store.Entry {
	t.Helper()
	entries, err := s.ListByIdentity(t.Context(), realm, key, value, now)
	if err != nil {
		t.Fatalf("ListByIdentity(%q, %q, %q): %v", realm, key, value, err)
	}
	if len(entries) > store.MaxListByIdentity {
		t.Fatalf("ListByIdentity(%q, %q, %q) returned %d sessions, over the cap of %d", realm, key, value, len(entries), store.MaxListByIdentity)
	}
	for i, e := range entries {
		switch {
		case e.Record == nil:
			t.Fatalf("ListByIdentity: %s has no record", e.Hash.Short())
		case i > 0 && bytes.Compare(entries[i-1].Hash[:], e.Hash[:]) >= 0:
			t.Fatalf("ListByIdentity: %s after %s, not in hash order", e.Hash.Short(), entries[i-1].Hash.Short())
		case e.Record.Forwarded():
			t.Fatalf("ListByIdentity listed forward record %s", e.Hash.Short())
		case e.Record.Expired(now):
			t.Fatalf("ListByIdentity listed %s, expired at %s", e.Hash.Short(), now.Sub(base))
		case !isIdentity(e.Record, key, value):
			t.Fatalf("ListByIdentity(%q, %q) listed %s, which holds %v", key, value, e.Hash.Short(), e.Record.Values)
		case e.Record.Realm != "" && e.Record.Realm != realm:
			t.Fatalf("ListByIdentity in realm %q listed %s of realm %q", realm, e.Hash.Short(), e.Record.Realm)
		}
	}
	return entries
}

// isIdentity reports whether rec is indexed under key with value: its
// value of key or, sealed, its identity tag.
func isIdentity(rec *session.Record, key, value string) bool {
	got, ok := rec.IndexedIdentity(key)
	return ok && got == value
}

// wantListed checks that ListByIdentity lists exactly the sessions under
// hashes, whatever order they are given in, each as Load has it.
func wantListed(t *testing.T, s store.Store, realm, key, value string, now time.Time, hashes ...session.Hash) {
	t.Helper()
	entries := listByIdentity(t, s, realm, key, value, now)
	got := make([]session.Hash, len(entries))
	for i, e := range entries {
		got[i] = e.Hash
	}
	want := slices.SortedFunc(slices.Values(hashes), compareHashes)
	if !slices.Equal(got, want) {
		t.Fatalf("ListByIdentity(%q, %q, %q) at %s listed %s, want %s", realm, key, value, now.Sub(base), shorts(got), shorts(want))
	}
	for _, e := range entries {
		loaded, err := s.Load(t.Context(), e.Hash, now, timeouts)
		if err != nil {
			t.Fatalf("Load of listed session %s: %v", e.Hash.Short(), err)
		}
		if d := diff(e.Record, loaded); d != "" || e.Record.Realm != loaded.Realm {
			t.Fatalf("listed session %s differs from the loaded one: %s (realm %q, loaded %q)", e.Hash.Short(), d, e.Record.Realm, loaded.Realm)
		}
	}
}

func compareHashes(a, b session.Hash) int { return bytes.Compare(a[:], b[:]) }

func shorts(hashes []session.Hash) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = h.Short()
	}
	return out
}

// testListByIdentity: the sessions of the identity key with the value,
// and no others: not those of values that share a prefix with it, of the
// same value under another key, or never indexed.
func testListByIdentity(t *testing.T, s store.Store) {
	alices := []session.Hash{hashOf("alice1"), hashOf("alice2"), hashOf("alice3")}
	for i, h := range alices {
		create(t, s, h, base, map[string]string{"user": "alice", "n": fmt.Sprint(i)})
	}
	create(t, s, hashOf("bob"), base, map[string]string{"user": "bob"})
	create(t, s, hashOf("ali"), base, map[string]string{"user": "ali"})
	create(t, s, hashOf("alicex"), base, map[string]string{"user": "alicex"})
	create(t, s, hashOf("anonymous"), base, map[string]string{"cart": "3"})
	create(t, s, hashOf("email"), base, map[string]string{"email": "alice"})
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(hashOf("unindexed")), Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
		Now: base, Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	byEmail := hashOf("by-email")
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(byEmail), Patch: &session.Patch{Set: map[string]string{"email": "alice", "user": "zed"}},
		Identity: "email", Now: base, Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, "", "user", "alice", base, alices...)
	wantListed(t, s, "", "user", "bob", base, hashOf("bob"))
	wantListed(t, s, "", "user", "ali", base, hashOf("ali"))
	wantListed(t, s, "", "email", "alice", base, byEmail)
	wantListed(t, s, "", "user", "zed", base) // indexed under email
	wantListed(t, s, "", "user", "nobody", base)
	wantListed(t, s, "", "user", "", base)
	wantListed(t, s, "", "", "alice", base)
	// The listed records are the caller's.
	entries := listByIdentity(t, s, "", "user", "alice", base)
	entries[0].Record.Values["user"] = "mallory"
	wantListed(t, s, "", "user", "alice", base, alices...)
	// It only reads: the sessions are all there still.
	wantCount(t, s, base, 10)
}

// testListByIdentityPerRealm: the sessions of the realm and those of no
// realm, as DeleteByIdentity removes them.
func testListByIdentityPerRealm(t *testing.T, s store.Store) {
	inShop, inAdmin, legacy := hashOf("shop"), hashOf("admin"), hashOf("legacy")
	createIn(t, s, shop, inShop, base, map[string]string{"user": "alice"})
	createIn(t, s, admin, inAdmin, base, map[string]string{"user": "alice"})
	createIn(t, s, "", legacy, base, map[string]string{"user": "alice"})
	createIn(t, s, shop, hashOf("bob"), base, map[string]string{"user": "bob"})
	wantListed(t, s, shop, "user", "alice", base, inShop, legacy)
	wantListed(t, s, admin, "user", "alice", base, inAdmin, legacy)
	wantListed(t, s, "elsewhere", "user", "alice", base, legacy)
	// A write stamps the realm on the legacy session: it is shop's now.
	if _, err := s.Update(t.Context(), in(shop, legacy, "alice", base.Add(time.Minute), nil)); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, shop, "user", "alice", base.Add(time.Minute), inShop, legacy)
	wantListed(t, s, admin, "user", "alice", base.Add(time.Minute), inAdmin)
	// What it lists is what a revocation removes.
	deleteByIdentityIn(t, s, shop, "user", "alice", 2)
	wantListed(t, s, shop, "user", "alice", base.Add(time.Minute))
	wantListed(t, s, admin, "user", "alice", base.Add(time.Minute), inAdmin)
}

// testListByIdentityForward: a rotation lists the successor, never the
// forward record left under the old hash.
func testListByIdentityForward(t *testing.T, s store.Store) {
	old, renewed, other := hashOf("old"), hashOf("renewed"), hashOf("other")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	createIn(t, s, shop, other, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	wantForward(t, s, old, renewed, base.Add(time.Minute))
	wantListed(t, s, shop, "user", "alice", base.Add(time.Minute), renewed, other)
	// A login that changes the user: the session is the new user's.
	rotate(t, s, shop, other, hashOf("carol"), "alice", base.Add(2*time.Minute), map[string]string{"user": "carol"})
	wantListed(t, s, shop, "user", "alice", base.Add(2*time.Minute), renewed)
	wantListed(t, s, shop, "user", "carol", base.Add(2*time.Minute), hashOf("carol"))
}

// testListByIdentityExpiry: a session is listed until its stored deadline,
// whether or not anything has removed it since.
func testListByIdentityExpiry(t *testing.T, s store.Store) {
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour, TouchInterval: time.Second}
	brief := hashOf("brief")
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(brief), Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
		Identity: identity, Now: base, Timeouts: short, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	long := hashOf("long")
	create(t, s, long, base, map[string]string{"user": "alice"})
	wantListed(t, s, "", "user", "alice", base, brief, long)
	wantListed(t, s, "", "user", "alice", base.Add(time.Minute-time.Nanosecond), brief, long)
	wantListed(t, s, "", "user", "alice", base.Add(time.Minute), long)
	wantListed(t, s, "", "user", "alice", base.Add(12*time.Hour))
}

// testListByIdentityFollowsChanges: the listing follows the identity of
// each session as its writes change it.
func testListByIdentityFollowsChanges(t *testing.T, s store.Store) {
	a, b, c, d := hashOf("a"), hashOf("b"), hashOf("c"), hashOf("d")
	for _, h := range []session.Hash{a, b, c, d} {
		create(t, s, h, base, map[string]string{"user": "alice"})
	}
	now := base.Add(time.Minute)
	mustUpdate(t, s, a, now, &session.Patch{Set: map[string]string{"user": "carol"}})
	mustUpdate(t, s, b, now, &session.Patch{Delete: []string{"user"}})
	if r, err := update(t, s, c, now, &session.Patch{Destroy: true}); err != nil || r != nil {
		t.Fatalf("Destroy: got (%v, %v), want (nil, nil)", r, err)
	}
	wantListed(t, s, "", "user", "alice", now, d)
	wantListed(t, s, "", "user", "carol", now, a)
	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, "", "user", "alice", now)
	mustUpdate(t, s, b, now, &session.Patch{Set: map[string]string{"user": "alice"}})
	wantListed(t, s, "", "user", "alice", now, b)
	// A touch moves the deadlines it is listed with, as Load shows them,
	// however the store writes touches; past the first idle deadline it
	// is still listed.
	touched := mustUpdate(t, s, b, base.Add(20*time.Minute), nil)
	wantListed(t, s, "", "user", "alice", base.Add(20*time.Minute), b)
	later := base.Add(40 * time.Minute)
	entries := listByIdentity(t, s, "", "user", "alice", later)
	if len(entries) != 1 || !entries[0].Record.LastSeen.Equal(touched.LastSeen) || !entries[0].Record.IdleDeadline.Equal(touched.IdleDeadline) {
		t.Fatalf("after a touch: listed %+v, want it seen at %s", entries, touched.LastSeen.Sub(base))
	}
}

// testListByIdentityCap: an identity with more sessions than
// store.MaxListByIdentity has the first that many in hash order listed.
func testListByIdentityCap(t *testing.T, s store.Store) {
	n := store.MaxListByIdentity + 3
	hashes := make([]session.Hash, n)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprint("many", i))
	}
	// Concurrently, so that a store that commits writers in groups (bolt)
	// does not sync a thousand times.
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				_, err := s.Update(context.Background(), store.Update{
					NewHash: ptr(hashes[i]), Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
					Identity: identity, Now: base, Timeouts: timeouts, Limits: limits,
				})
				if err != nil {
					errs <- fmt.Errorf("creating session %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries := listByIdentity(t, s, "", "user", "alice", base)
	slices.SortFunc(hashes, compareHashes)
	got := make([]session.Hash, len(entries))
	for i, e := range entries {
		got[i] = e.Hash
	}
	if !slices.Equal(got, hashes[:store.MaxListByIdentity]) {
		t.Fatalf("ListByIdentity of %d sessions listed %d, want the first %d in hash order", n, len(got), store.MaxListByIdentity)
	}
	if !maps.Equal(entries[0].Record.Values, map[string]string{"user": "alice"}) {
		t.Fatalf("listed %v", entries[0].Record.Values)
	}
}

// testIdentityInEitherSpelling: an identity key is one key in either
// spelling of '_' and '-' (the config may name it user_id and the app set
// X-Session-Set-User-Id, stored as user-id), so a session that holds it in
// the other spelling is indexed, listed and removed as the user's, and a
// write that changes its spelling keeps it listed once.
func testIdentityInEitherSpelling(t *testing.T, s store.Store) {
	const key = "user_id"
	asConfigured, asSet := hashOf("spelled-as-configured"), hashOf("spelled-as-set")
	for hash, values := range map[session.Hash]map[string]string{
		asConfigured: {"user_id": "alice"},
		asSet:        {"user-id": "alice"},
	} {
		if _, err := s.Update(t.Context(), store.Update{
			NewHash: ptr(hash), Patch: &session.Patch{Set: values},
			Identity: key, Now: base, Timeouts: timeouts, Limits: limits,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// One stored before the spellings were one to the index: written with
	// no identity key, as Decide then wrote it, it joins at its next write.
	before := hashOf("spelled-as-set-before")
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(before), Patch: &session.Patch{Set: map[string]string{"user-id": "alice"}},
		Now: base, Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, "", key, "alice", base, asConfigured, asSet)
	if _, err := s.Update(t.Context(), store.Update{
		Hash: before, HasHash: true, Seen: "alice", Patch: &session.Patch{Set: map[string]string{"cart": "1"}},
		Identity: key, Now: base, Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, "", key, "alice", base, asConfigured, asSet, before)
	// The app writes the key the other way round now: the same key.
	if _, err := s.Update(t.Context(), store.Update{
		Hash: asSet, HasHash: true, Seen: "alice", Patch: &session.Patch{Set: map[string]string{"user_id": "alice"}},
		Identity: key, Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, "", key, "alice", base.Add(time.Minute), asConfigured, asSet, before)
	deleteByIdentity(t, s, key, "alice", 3)
	for _, hash := range []session.Hash{asConfigured, asSet, before} {
		wantGone(t, s, hash, base.Add(time.Minute))
	}
}
