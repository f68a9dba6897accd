package storetest

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Sealed runs the tests of values sealed at rest (store.Sealing) against
// the stores that open returns, fresh and empty each time as for Run:
// every store keeps what Decide sealed as it is, indexes a sealed session
// by its identity tag, and carries the successor's key in a forward
// record.
func Sealed(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Create", testSealedCreate},
		{"WriteInPlace", testSealedWriteInPlace},
		{"Rotation", testSealedRotation},
		{"ForwardLateWrite", testSealedForwardLateWrite},
		{"ForwardChain", testSealedForwardChain},
		{"ForwardWithoutKey", testSealedForwardWithoutKey},
		{"Flash", testSealedFlash},
		{"IdentityIndex", testSealedIdentityIndex},
		{"IdentityInEitherSpelling", testSealedIdentityInEitherSpelling},
		{"PlainSealedAtNextWrite", testSealedPlainAtNextWrite},
		{"OpenedWhenOff", testSealedOpenedWhenOff},
		{"NeedsItsKey", testSealedNeedsItsKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := opened(t, open)
			tc.run(t, s)
		})
	}
}

// sealIndex is the suite's index key.
var sealIndex = func() *session.IndexKey {
	k, err := session.NewIndexKey([]byte("storetest index secret, 32 bytes at least"))
	if err != nil {
		panic(err)
	}
	return k
}()

// anID is a session ID of the suite, by name: its hash and its key.
type anID struct {
	hash session.Hash
	key  *session.SealKey
}

func idOf(name string) anID {
	id := "storetest:" + name
	return anID{hash: session.HashID(id), key: session.DeriveSealKey(id)}
}

// sealedIn is an update of the session of id in realm shop by a request
// that saw seen, sealing with the suite's index key.
func sealedIn(id anID, seen string, now time.Time, patch *session.Patch) store.Update {
	u := in(shop, id.hash, seen, now, patch)
	u.Seal = &store.Sealing{Key: id.key, Index: sealIndex}
	return u
}

const (
	sealedUA  = "Mozilla/5.0 (sealed; storetest)"
	sealedNet = "203.0.113.0/24"
)

// createSealed starts a sealed session of id in realm shop holding values,
// with a User-Agent.
func createSealed(t *testing.T, s store.Store, id anID, now time.Time, values map[string]string) {
	t.Helper()
	res, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(id.hash), Patch: &session.Patch{Set: maps.Clone(values)},
		Identity: identity, Realm: shop, Now: now, Timeouts: timeouts, Limits: limits,
		UserAgent: sealedUA, ClientNet: sealedNet,
		Seal: &store.Sealing{NewKey: id.key, Index: sealIndex},
	})
	if err != nil {
		t.Fatalf("creating sealed session %s: %v", id.hash.Short(), err)
	}
	if res.Record == nil || res.Record.Sealed || !maps.Equal(res.Record.Values, values) || res.Record.UserAgent != sealedUA {
		t.Fatalf("creating sealed session %s: Update returned %+v, want the plain record", id.hash.Short(), res.Record)
	}
}

// loadSealed loads the record of id as stored, checks that it is sealed
// and that it reveals none of plain, and returns it and its opened copy.
func loadSealed(t *testing.T, s store.Store, id anID, now time.Time, plain ...string) (stored, opened *session.Record) {
	t.Helper()
	stored, err := s.Load(t.Context(), id.hash, now, timeouts)
	if err != nil {
		t.Fatalf("loading sealed session %s: %v", id.hash.Short(), err)
	}
	if !stored.Sealed {
		t.Fatalf("session %s is stored plain: %+v", id.hash.Short(), stored)
	}
	for _, v := range sealedFields(stored) {
		for _, p := range plain {
			if strings.Contains(v, p) {
				t.Errorf("session %s stores %q in the clear", id.hash.Short(), p)
			}
		}
	}
	opened = stored.Clone()
	if err := id.key.Open(id.hash, opened); err != nil {
		t.Fatalf("opening session %s with its key: %v", id.hash.Short(), err)
	}
	return stored, opened
}

func sealedFields(rec *session.Record) []string {
	out := []string{rec.UserAgent, rec.ClientNet, rec.IdentityTag()}
	for _, m := range []map[string]string{rec.Values, rec.Flash} {
		for _, v := range m {
			out = append(out, v)
		}
	}
	return out
}

func wantValues(t *testing.T, what string, got *session.Record, want map[string]string) {
	t.Helper()
	if !maps.Equal(got.Values, want) {
		t.Errorf("%s: values = %v, want %v", what, got.Values, want)
	}
}

func testSealedCreate(t *testing.T, s store.Store) {
	a := idOf("sealed-create")
	values := map[string]string{"user": "alice", "cart": "three apples"}
	createSealed(t, s, a, base, values)
	stored, opened := loadSealed(t, s, a, base, "alice", "three apples", sealedUA, sealedNet)
	wantValues(t, "opened", opened, values)
	if opened.UserAgent != sealedUA || opened.ClientNet != sealedNet {
		t.Errorf("opened User-Agent %q, client network %q; want %q, %q", opened.UserAgent, opened.ClientNet, sealedUA, sealedNet)
	}
	if want := sealIndex.Tag(identity, "alice"); stored.IdentityTag() != want {
		t.Errorf("identity tag = %q, want %q", stored.IdentityTag(), want)
	}
	// Another session's key opens nothing of it.
	if err := idOf("other").key.Open(a.hash, stored.Clone()); !errors.Is(err, session.ErrSealed) {
		t.Errorf("opening with another key: %v, want ErrSealed", err)
	}
}

func testSealedWriteInPlace(t *testing.T, s store.Store) {
	a := idOf("sealed-in-place")
	createSealed(t, s, a, base, map[string]string{"user": "alice", "cart": "1", "theme": "dark"})
	before, _ := loadSealed(t, s, a, base)
	res, err := s.Update(t.Context(), sealedIn(a, "alice", base.Add(2*time.Minute),
		&session.Patch{Set: map[string]string{"cart": "2"}, Delete: []string{"theme"}}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "alice", "cart": "2"}
	wantValues(t, "result", res.Record, want)
	after, opened := loadSealed(t, s, a, base.Add(2*time.Minute))
	wantValues(t, "opened", opened, want)
	if after.Values["user"] != before.Values["user"] {
		t.Error("an unchanged value was sealed again: a write in place must keep its ciphertext")
	}
	if after.UserAgent != before.UserAgent || opened.UserAgent != sealedUA || after.ClientNet != before.ClientNet {
		t.Errorf("client data changed by a write in place: %q, %q", opened.UserAgent, opened.ClientNet)
	}
	// A touch alone keeps every ciphertext.
	if _, err := s.Update(t.Context(), sealedIn(a, "alice", base.Add(10*time.Minute), nil)); err != nil {
		t.Fatal(err)
	}
	touched, _ := loadSealed(t, s, a, base.Add(10*time.Minute))
	if !maps.Equal(touched.Values, after.Values) || !touched.LastSeen.Equal(base.Add(10*time.Minute)) {
		t.Errorf("a touch changed %v to %v, LastSeen %v", after.Values, touched.Values, touched.LastSeen)
	}
}

// rotateSealed renews the session of from to to by a request that saw
// seen, setting set.
func rotateSealed(t *testing.T, s store.Store, from, to anID, seen string, now time.Time, set map[string]string) store.Result {
	t.Helper()
	u := sealedIn(from, seen, now, &session.Patch{Renew: true, Set: set})
	u.NewHash, u.Seal.NewKey = ptr(to.hash), to.key
	res, err := s.Update(t.Context(), u)
	if err != nil {
		t.Fatalf("rotating %s to %s: %v", from.hash.Short(), to.hash.Short(), err)
	}
	if res.Hash != to.hash || res.Record == nil || res.Record.Sealed {
		t.Fatalf("rotating %s to %s: Update returned %+v", from.hash.Short(), to.hash.Short(), res)
	}
	return res
}

func testSealedRotation(t *testing.T, s store.Store) {
	a, b := idOf("sealed-rotation-a"), idOf("sealed-rotation-b")
	createSealed(t, s, a, base, map[string]string{"user": "alice", "cart": "1"})
	res := rotateSealed(t, s, a, b, "alice", base.Add(time.Minute), map[string]string{"user": "bob"})
	want := map[string]string{"user": "bob", "cart": "1"}
	wantValues(t, "result", res.Record, want)
	stored, opened := loadSealed(t, s, b, base.Add(time.Minute), "bob")
	wantValues(t, "opened under the new ID", opened, want)
	if opened.UserAgent != sealedUA || opened.ClientNet != sealedNet {
		t.Errorf("client data after rotation: %q, %q", opened.UserAgent, opened.ClientNet)
	}
	if err := a.key.Open(b.hash, stored.Clone()); !errors.Is(err, session.ErrSealed) {
		t.Errorf("the old ID's key opens the successor: %v", err)
	}
	fwd, err := s.Load(t.Context(), a.hash, base.Add(time.Minute), timeouts)
	if err != nil || !fwd.Forwarded() || fwd.SuccessorKey() == "" {
		t.Fatalf("forward record: %+v, %v; want one carrying the successor's key", fwd, err)
	}
	if k, err := a.key.OpenSuccessor(a.hash, fwd); err != nil || k.Open(b.hash, stored.Clone()) != nil {
		t.Errorf("the forward record's key does not open the successor: %v", err)
	}
}

func testSealedForwardLateWrite(t *testing.T, s store.Store) {
	a, b := idOf("sealed-late-a"), idOf("sealed-late-b")
	createSealed(t, s, a, base, map[string]string{"user": "alice"})
	rotateSealed(t, s, a, b, "alice", base.Add(time.Minute), nil)
	// A request that loaded the session under a before the rotation.
	res, err := s.Update(t.Context(), sealedIn(a, "alice", base.Add(2*time.Minute),
		&session.Patch{Set: map[string]string{"cart": "late"}}))
	if err != nil {
		t.Fatalf("late write through the forward record: %v", err)
	}
	want := map[string]string{"user": "alice", "cart": "late"}
	if !res.Followed || res.Hash != b.hash || res.Acted != b.hash {
		t.Errorf("late write: Followed %v, Hash %s, Acted %s; want the successor %s", res.Followed, res.Hash.Short(), res.Acted.Short(), b.hash.Short())
	}
	wantValues(t, "result", res.Record, want)
	_, opened := loadSealed(t, s, b, base.Add(2*time.Minute), "late")
	wantValues(t, "successor", opened, want)
}

func testSealedForwardChain(t *testing.T, s store.Store) {
	a, b, c := idOf("sealed-chain-a"), idOf("sealed-chain-b"), idOf("sealed-chain-c")
	createSealed(t, s, a, base, map[string]string{"user": "alice"})
	rotateSealed(t, s, a, b, "alice", base.Add(time.Minute), nil)
	rotateSealed(t, s, b, c, "alice", base.Add(2*time.Minute), nil)
	// Within ForwardTTL of the first rotation.
	now := base.Add(2*time.Minute + 30*time.Second)
	res, err := s.Update(t.Context(), sealedIn(a, "alice", now,
		&session.Patch{Set: map[string]string{"cart": "two hops"}}))
	if err != nil || res.Hash != c.hash || res.Acted != c.hash || !res.Followed {
		t.Fatalf("write two hops on: %+v, %v", res, err)
	}
	_, opened := loadSealed(t, s, c, now)
	wantValues(t, "successor", opened, map[string]string{"user": "alice", "cart": "two hops"})
}

func testSealedFlash(t *testing.T, s store.Store) {
	a := idOf("sealed-flash")
	createSealed(t, s, a, base, map[string]string{"user": "alice"})
	if _, err := s.Update(t.Context(), sealedIn(a, "alice", base, &session.Patch{Flash: map[string]string{"notice": "Saved the secret plan"}})); err != nil {
		t.Fatal(err)
	}
	_, opened := loadSealed(t, s, a, base, "Saved the secret plan")
	if opened.Flash["notice"] != "Saved the secret plan" {
		t.Fatalf("opened flash = %v", opened.Flash)
	}
	take := sealedIn(a, "alice", base.Add(time.Second), nil)
	take.TakeFlash, take.NoTouch = true, true
	res, err := s.Update(t.Context(), take)
	if err != nil || res.Flash["notice"] != "Saved the secret plan" {
		t.Fatalf("take: %v, %v; want the plain flash value", res.Flash, err)
	}
	stored, _ := loadSealed(t, s, a, base.Add(time.Second))
	if len(stored.Flash) != 0 {
		t.Fatalf("flash after the take: %v", stored.Flash)
	}
	restore := sealedIn(a, "alice", base.Add(2*time.Second), nil)
	restore.RestoreFlash, restore.NoTouch = res.Flash, true
	if _, err := s.Update(t.Context(), restore); err != nil {
		t.Fatal(err)
	}
	_, opened = loadSealed(t, s, a, base.Add(2*time.Second), "Saved the secret plan")
	if opened.Flash["notice"] != "Saved the secret plan" {
		t.Errorf("restored flash = %v", opened.Flash)
	}
}

func testSealedIdentityIndex(t *testing.T, s store.Store) {
	a, b, c := idOf("sealed-index-a"), idOf("sealed-index-b"), idOf("sealed-index-c")
	createSealed(t, s, a, base, map[string]string{"user": "alice"})
	createSealed(t, s, b, base, map[string]string{"user": "alice"})
	createSealed(t, s, c, base, map[string]string{"user": "bob"})
	tag := sealIndex.Tag(identity, "alice")
	wantListed(t, s, shop, identity, tag, base, a.hash, b.hash)
	wantListed(t, s, shop, identity, "alice", base) // the name finds nothing
	n, err := s.DeleteByIdentity(t.Context(), shop, identity, "alice")
	if err != nil || n != 0 {
		t.Errorf("DeleteByIdentity by the name: %d, %v; want 0", n, err)
	}
	n, err = s.DeleteByIdentity(t.Context(), shop, identity, tag)
	if err != nil || n != 2 {
		t.Fatalf("DeleteByIdentity by the tag: %d, %v; want 2", n, err)
	}
	for _, id := range []anID{a, b} {
		if _, err := s.Load(t.Context(), id.hash, base, timeouts); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %s after the revocation: %v", id.hash.Short(), err)
		}
	}
	wantListed(t, s, shop, identity, sealIndex.Tag(identity, "bob"), base, c.hash)
	// A login as another user moves the session to that user's tag.
	if _, err := s.Update(t.Context(), sealedIn(c, "bob", base, &session.Patch{Set: map[string]string{"user": "carol"}})); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, shop, identity, sealIndex.Tag(identity, "bob"), base)
	wantListed(t, s, shop, identity, sealIndex.Tag(identity, "carol"), base, c.hash)
}

func testSealedPlainAtNextWrite(t *testing.T, s store.Store) {
	a := idOf("sealed-plain-first")
	createIn(t, s, shop, a.hash, base, map[string]string{"user": "alice", "cart": "1"})
	wantListed(t, s, shop, identity, "alice", base, a.hash)
	if _, err := s.Update(t.Context(), sealedIn(a, "alice", base.Add(time.Second), &session.Patch{Set: map[string]string{"theme": "dark"}})); err != nil {
		t.Fatal(err)
	}
	_, opened := loadSealed(t, s, a, base.Add(time.Second), "alice")
	wantValues(t, "opened", opened, map[string]string{"user": "alice", "cart": "1", "theme": "dark"})
	wantListed(t, s, shop, identity, "alice", base)
	wantListed(t, s, shop, identity, sealIndex.Tag(identity, "alice"), base, a.hash)
}

func testSealedOpenedWhenOff(t *testing.T, s store.Store) {
	a := idOf("sealed-then-off")
	createSealed(t, s, a, base, map[string]string{"user": "alice", "cart": "1"})
	u := sealedIn(a, "alice", base.Add(time.Second), &session.Patch{Set: map[string]string{"cart": "2"}})
	u.Seal.Index = nil // seal_values turned off: the key opens, nothing seals
	res, err := s.Update(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "alice", "cart": "2"}
	wantValues(t, "result", res.Record, want)
	rec, err := s.Load(t.Context(), a.hash, base.Add(time.Second), timeouts)
	if err != nil || rec.Sealed || rec.IdentityTag() != "" || rec.UserAgent != sealedUA || rec.ClientNet != sealedNet {
		t.Fatalf("after a write with sealing off: %+v, %v; want it plain", rec, err)
	}
	wantValues(t, "stored", rec, want)
	wantListed(t, s, shop, identity, "alice", base, a.hash)
	wantListed(t, s, shop, identity, sealIndex.Tag(identity, "alice"), base)
}

func testSealedNeedsItsKey(t *testing.T, s store.Store) {
	a := idOf("sealed-needs-key")
	createSealed(t, s, a, base, map[string]string{"user": "alice"})
	before, _ := loadSealed(t, s, a, base)
	patch := &session.Patch{Set: map[string]string{"cart": "1"}}
	if _, err := s.Update(t.Context(), in(shop, a.hash, "alice", base.Add(time.Second), patch)); !errors.Is(err, store.ErrNoSealKey) {
		t.Errorf("update without a key: %v, want ErrNoSealKey", err)
	}
	u := sealedIn(a, "alice", base.Add(time.Second), patch)
	u.Seal.Key = idOf("another").key
	if _, err := s.Update(t.Context(), u); !errors.Is(err, session.ErrSealed) {
		t.Errorf("update with another session's key: %v, want ErrSealed", err)
	}
	after, _ := loadSealed(t, s, a, base)
	if !maps.Equal(after.Values, before.Values) || !after.LastSeen.Equal(before.LastSeen) {
		t.Errorf("a refused update changed the session: %v to %v", before.Values, after.Values)
	}
}

// testSealedForwardWithoutKey: a session rotated with sealing off leaves a
// forward record that carries no key; a late request with sealing on
// writes through it, and the successor, whose key it cannot know, stays
// plain and readable.
func testSealedForwardWithoutKey(t *testing.T, s store.Store) {
	a, b := idOf("unkeyed-a"), idOf("unkeyed-b")
	createIn(t, s, shop, a.hash, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, a.hash, b.hash, "alice", base.Add(time.Minute), nil)
	res, err := s.Update(t.Context(), sealedIn(a, "alice", base.Add(2*time.Minute),
		&session.Patch{Set: map[string]string{"cart": "late"}}))
	if err != nil || !res.Followed || res.Hash != b.hash {
		t.Fatalf("late write: %+v, %v", res, err)
	}
	rec, err := s.Load(t.Context(), b.hash, base.Add(2*time.Minute), timeouts)
	if err != nil || rec.Sealed {
		t.Fatalf("successor: %+v, %v; want it plain", rec, err)
	}
	wantValues(t, "successor", rec, map[string]string{"user": "alice", "cart": "late"})
	wantListed(t, s, shop, identity, "alice", base.Add(2*time.Minute), b.hash)
}

// testSealedIdentityInEitherSpelling: a sealed session that holds the
// identity key in the other spelling is tagged and listed as the user's,
// as a plain one is (testIdentityInEitherSpelling).
func testSealedIdentityInEitherSpelling(t *testing.T, s store.Store) {
	const key = "user_id"
	a := idOf("sealed-spelled-as-set")
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(a.hash), Patch: &session.Patch{Set: map[string]string{"user-id": "alice"}},
		Identity: key, Realm: shop, Now: base, Timeouts: timeouts, Limits: limits,
		Seal: &store.Sealing{NewKey: a.key, Index: sealIndex},
	}); err != nil {
		t.Fatal(err)
	}
	wantListed(t, s, shop, key, sealIndex.Tag(key, "alice"), base, a.hash)
	deleteByIdentityIn(t, s, shop, key, sealIndex.Tag(key, "alice"), 1)
	wantGone(t, s, a.hash, base)
}
