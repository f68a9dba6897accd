package storetest

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The tests of realms and forward records. Their updates name a realm and
// the user the request saw, as the handler's do.

const (
	shop  = "shop"
	admin = "admin"
)

// in is an update of the session under hash at now in realm, by a request
// that saw user seen.
func in(realm string, hash session.Hash, seen string, now time.Time, patch *session.Patch) store.Update {
	return store.Update{
		Hash: hash, HasHash: true, Patch: patch, Identity: identity, Seen: seen, Realm: realm,
		Now: now, Timeouts: timeouts, Limits: limits,
	}
}

// createIn starts a session under hash at now in realm ("" for a session
// stored before realms).
func createIn(t *testing.T, s store.Store, realm string, hash session.Hash, now time.Time, values map[string]string) *session.Record {
	t.Helper()
	res, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(hash), Patch: &session.Patch{Set: maps.Clone(values)},
		Identity: identity, Realm: realm, Now: now, Timeouts: timeouts, Limits: limits,
	})
	if err != nil {
		t.Fatalf("creating session %s in realm %q: %v", hash.Short(), realm, err)
	}
	if res.Record == nil || res.Hash != hash || res.Followed || res.Record.Realm != realm {
		t.Fatalf("creating session %s in realm %q: Update returned %+v", hash.Short(), realm, res)
	}
	return res.Record
}

// rotate renews the session under from to to at now in realm, by a
// request that saw seen, setting set, and returns the result.
func rotate(t *testing.T, s store.Store, realm string, from, to session.Hash, seen string, now time.Time, set map[string]string) store.Result {
	t.Helper()
	u := in(realm, from, seen, now, &session.Patch{Renew: true, Set: set})
	u.NewHash = ptr(to)
	res, err := s.Update(t.Context(), u)
	if err != nil {
		t.Fatalf("rotating %s to %s: %v", from.Short(), to.Short(), err)
	}
	if res.Hash != to || res.Record == nil {
		t.Fatalf("rotating %s to %s: Update returned %+v", from.Short(), to.Short(), res)
	}
	return res
}

// wantResult checks an Update's result: no error, the record at hash with
// values (nil: no record), and whether it was followed.
func wantResult(t *testing.T, what string, res store.Result, err error, hash session.Hash, values map[string]string, followed bool) {
	t.Helper()
	switch {
	case err != nil:
		t.Fatalf("%s: %v", what, err)
	case res.Followed != followed:
		t.Fatalf("%s: Followed = %v, want %v", what, res.Followed, followed)
	case values == nil:
		if res.Record != nil {
			t.Fatalf("%s: Update returned %+v, want no record", what, res.Record)
		}
	case res.Record == nil || res.Hash != hash || !maps.Equal(res.Record.Values, values):
		t.Fatalf("%s: Update returned %+v, want %v at %s", what, res, values, hash.Short())
	}
}

// wantErr checks that an Update failed with target and returned nothing.
func wantErr(t *testing.T, what string, res store.Result, err, target error) {
	t.Helper()
	if !errors.Is(err, target) || res.Record != nil || res.Hash != (session.Hash{}) || res.Acted != (session.Hash{}) || res.Followed || res.Flash != nil {
		t.Fatalf("%s: got (%+v, %v), want %v", what, res, err, target)
	}
}

// wantSame checks that the session under hash at now is still before.
func wantSame(t *testing.T, s store.Store, what string, hash session.Hash, now time.Time, before *session.Record) {
	t.Helper()
	got := load(t, s, hash, now)
	if d := diff(got, before); d != "" || got.Realm != before.Realm {
		t.Fatalf("%s changed session %s: %s (realm %q, was %q)", what, hash.Short(), d, got.Realm, before.Realm)
	}
}

func testRealmStamped(t *testing.T, s store.Store) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	if got := load(t, s, h, base); got.Realm != shop {
		t.Fatalf("Load: realm %q, want %q", got.Realm, shop)
	}
	res, err := s.Update(t.Context(), in(shop, h, "alice", base.Add(time.Minute), &session.Patch{Set: map[string]string{"cart": "3"}}))
	wantResult(t, "update in the session's realm", res, err, h, map[string]string{"user": "alice", "cart": "3"}, false)
	if res.Record.Realm != shop || load(t, s, h, base.Add(time.Minute)).Realm != shop {
		t.Fatalf("the update lost the realm: %+v", res.Record)
	}
}

// testRealmOther: a handler of another realm finds no session, whatever it
// asks, and changes nothing; Load still returns the record, for the
// caller to judge.
func testRealmOther(t *testing.T, s store.Store) {
	h, fresh := hashOf("a"), hashOf("fresh")
	before := createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	now := base.Add(time.Minute)
	renewal := in(admin, h, "alice", now, &session.Patch{Renew: true})
	renewal.NewHash = ptr(fresh)
	for what, u := range map[string]store.Update{
		"touch":    in(admin, h, "alice", now, nil),
		"set":      in(admin, h, "alice", now, &session.Patch{Set: map[string]string{"role": "admin"}}),
		"destroy":  in(admin, h, "alice", now, &session.Patch{Destroy: true}),
		"renewal":  renewal,
		"no realm": in("", h, "alice", now, &session.Patch{Set: map[string]string{"role": "admin"}}),
	} {
		res, err := s.Update(t.Context(), u)
		wantErr(t, what+" from another realm", res, err, store.ErrNotFound)
	}
	wantSame(t, s, "updates from another realm", h, now, before)
	wantGone(t, s, fresh, now)
	wantCount(t, s, now, 1)
}

// testRealmLegacyAdopted: a session stored before realms (realm "") is
// adopted by the first realm that writes it, and is then of that realm.
func testRealmLegacyAdopted(t *testing.T, s store.Store) {
	h := hashOf("a")
	createIn(t, s, "", h, base, map[string]string{"user": "alice"})
	res, err := s.Update(t.Context(), in(shop, h, "alice", base.Add(time.Minute), nil))
	wantResult(t, "a touch in a realm", res, err, h, map[string]string{"user": "alice"}, false)
	got := load(t, s, h, base.Add(time.Minute))
	if got.Realm != shop || res.Record.Realm != shop {
		t.Fatalf("after a touch in realm %q, the legacy session is of realm %q (returned %q)", shop, got.Realm, res.Record.Realm)
	}
	res, err = s.Update(t.Context(), in(admin, h, "alice", base.Add(2*time.Minute), &session.Patch{Set: map[string]string{"role": "admin"}}))
	wantErr(t, "an update from another realm after the adoption", res, err, store.ErrNotFound)

	// A rotation stamps the realm on the moved session too.
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, "", old, base, map[string]string{"user": "bob"})
	res = rotate(t, s, admin, old, renewed, "bob", base.Add(time.Minute), nil)
	if got := load(t, s, renewed, base.Add(time.Minute)); got.Realm != admin || res.Record.Realm != admin {
		t.Fatalf("a legacy session rotated in realm %q is of realm %q", admin, got.Realm)
	}
}

// testDeleteByIdentityPerRealm: a revocation in one realm removes that
// realm's sessions and the legacy ones, and leaves other realms' alone,
// index entries included.
func testDeleteByIdentityPerRealm(t *testing.T, s store.Store) {
	for _, c := range []struct{ name, realm, user string }{
		{"shop-alice", shop, "alice"}, {"shop-alice2", shop, "alice"}, {"admin-alice", admin, "alice"},
		{"legacy-alice", "", "alice"}, {"shop-bob", shop, "bob"}, {"legacy-bob", "", "bob"},
	} {
		createIn(t, s, c.realm, hashOf(c.name), base, map[string]string{"user": c.user})
	}
	deleteByIdentityIn(t, s, shop, "user", "alice", 3)
	for _, name := range []string{"shop-alice", "shop-alice2", "legacy-alice"} {
		wantGone(t, s, hashOf(name), base)
	}
	load(t, s, hashOf("admin-alice"), base)
	wantCount(t, s, base, 3)
	deleteByIdentityIn(t, s, shop, "user", "alice", 0)
	// The admin session's index entry survived the shop's revocation.
	deleteByIdentityIn(t, s, admin, "user", "alice", 1)
	wantGone(t, s, hashOf("admin-alice"), base)
	deleteByIdentityIn(t, s, admin, "user", "bob", 1) // the legacy one
	load(t, s, hashOf("shop-bob"), base)
	deleteByIdentityIn(t, s, shop, "user", "bob", 1)
	wantCount(t, s, base, 0)
}

// testForwardFollowed: a request that loaded the session before another
// rotated it lands its changes in the successor.
func testForwardFollowed(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice", "cart": "3"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	fwd := wantForward(t, s, old, renewed, base.Add(time.Minute))
	if fwd.Realm != shop {
		t.Fatalf("forward record of realm %q, want %q", fwd.Realm, shop)
	}
	now := base.Add(90 * time.Second)
	res, err := s.Update(t.Context(), in(shop, old, "alice", now, &session.Patch{Set: map[string]string{"cart": "4"}, Delete: []string{"nothing"}}))
	want := map[string]string{"user": "alice", "cart": "4"}
	wantResult(t, "update through the forward record", res, err, renewed, want, true)
	got := load(t, s, renewed, now)
	wantRecord(t, "the successor", got, 0, 90*time.Second, 90*time.Second+30*time.Minute, 12*time.Hour, want)
	if got.Realm != shop {
		t.Fatalf("the successor is of realm %q, want %q", got.Realm, shop)
	}
	// The forward record is unchanged by being followed.
	wantForward(t, s, old, renewed, now)
	wantCount(t, s, now, 1)
	deleteByIdentityIn(t, s, shop, "user", "alice", 1)
}

// testForwardStale: a login since the request loaded the session: its
// changes would land in another user's session, so none are written.
func testForwardStale(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice", "cart": "3"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), map[string]string{"user": "bob"})
	now := base.Add(90 * time.Second)
	before := load(t, s, renewed, now)
	for _, u := range []store.Update{
		in(shop, old, "alice", now, &session.Patch{Set: map[string]string{"cart": "4"}}),
		in(shop, old, "", now, &session.Patch{Set: map[string]string{"cart": "4"}}),
		in(shop, old, "alice", now, &session.Patch{Destroy: true}),
	} {
		res, err := s.Update(t.Context(), u)
		wantErr(t, fmt.Sprintf("update through the forward record by a request that saw %q", u.Seen), res, err, store.ErrStale)
	}
	wantSame(t, s, "stale updates", renewed, now, before)
}

// testForwardTouchOnly: keeping a rotated-away ID alive is no reason to
// write: the rotation touched the session.
func testForwardTouchOnly(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	now := base.Add(2 * time.Minute)
	before := load(t, s, renewed, now)
	for _, p := range []*session.Patch{nil, {}, {Renew: true}} {
		res, err := s.Update(t.Context(), in(shop, old, "alice", now, p))
		wantErr(t, "touch through a forward record", res, err, store.ErrNotFound)
	}
	wantSame(t, s, "touches through a forward record", renewed, now, before)
}

// testForwardDestroy: a logout through the old ID ends the successor.
func testForwardDestroy(t *testing.T, s store.Store) {
	old, renewed, fresh := hashOf("old"), hashOf("renewed"), hashOf("fresh")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	now := base.Add(2 * time.Minute)
	res, err := s.Update(t.Context(), in(shop, old, "alice", now, &session.Patch{Destroy: true}))
	wantResult(t, "destroy through a forward record", res, err, session.Hash{}, nil, true)
	wantGone(t, s, renewed, now)
	wantCount(t, s, now, 0)
	deleteByIdentityIn(t, s, shop, "user", "alice", 0)

	// Destroy and start anew: the new session replaces the successor.
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	u := in(shop, old, "alice", now, &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}})
	u.NewHash = ptr(fresh)
	res, err = s.Update(t.Context(), u)
	wantResult(t, "destroy and set through a forward record", res, err, fresh, map[string]string{"flash": "bye"}, true)
	wantGone(t, s, renewed, now)
	if got := load(t, s, fresh, now); !got.Created.Equal(now) || got.Realm != shop {
		t.Fatalf("the new session: %+v, want one created now in realm %q", got, shop)
	}
	wantCount(t, s, now, 1)
}

// testForwardSuccessorGone: a forward record to a session that ended
// leads nowhere, and nothing is started in its place.
func testForwardSuccessorGone(t *testing.T, s store.Store) {
	old, renewed, fresh := hashOf("old"), hashOf("renewed"), hashOf("fresh")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	if err := s.Delete(t.Context(), renewed); err != nil {
		t.Fatal(err)
	}
	now := base.Add(2 * time.Minute)
	withNew := in(shop, old, "alice", now, &session.Patch{Renew: true, Set: map[string]string{"cart": "1"}})
	withNew.NewHash = ptr(fresh)
	for what, u := range map[string]store.Update{
		"set":     in(shop, old, "alice", now, &session.Patch{Set: map[string]string{"cart": "1"}}),
		"destroy": in(shop, old, "alice", now, &session.Patch{Destroy: true}),
		"renewal": withNew,
	} {
		res, err := s.Update(t.Context(), u)
		wantErr(t, what+" through a forward record to a deleted session", res, err, store.ErrNotFound)
	}
	wantGone(t, s, renewed, now)
	wantGone(t, s, fresh, now)
	wantCount(t, s, now, 0)
}

// testForwardChain: rotations within the forward records' lifetime make a
// chain, which updates follow up to store.MaxHops forward records.
func testForwardChain(t *testing.T, s store.Store) {
	hashes := make([]session.Hash, store.MaxHops+2)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprint("link", i))
	}
	createIn(t, s, shop, hashes[0], base, map[string]string{"user": "alice"})
	// Each rotation but the first goes through the first ID, following
	// the chain so far.
	for i := 1; i <= store.MaxHops; i++ {
		res := rotate(t, s, shop, hashes[0], hashes[i], "alice", base.Add(time.Duration(i)*time.Second), nil)
		if res.Followed != (i > 1) {
			t.Fatalf("rotation %d: Followed = %v", i, res.Followed)
		}
	}
	for i := range store.MaxHops {
		wantForward(t, s, hashes[i], hashes[i+1], base.Add(time.Minute))
	}
	now := base.Add(time.Minute)
	res, err := s.Update(t.Context(), in(shop, hashes[0], "alice", now, &session.Patch{Set: map[string]string{"cart": "1"}}))
	wantResult(t, fmt.Sprintf("update through %d forward records", store.MaxHops), res, err,
		hashes[store.MaxHops], map[string]string{"user": "alice", "cart": "1"}, true)
	wantCount(t, s, now, 1)

	// One more link, and the first ID is too far from the session.
	rotate(t, s, shop, hashes[store.MaxHops], hashes[store.MaxHops+1], "alice", now, nil)
	last := load(t, s, hashes[store.MaxHops+1], now)
	res, err = s.Update(t.Context(), in(shop, hashes[0], "alice", now, &session.Patch{Set: map[string]string{"cart": "2"}}))
	wantErr(t, fmt.Sprintf("update through %d forward records", store.MaxHops+1), res, err, store.ErrNotFound)
	wantSame(t, s, "an update through too long a chain", hashes[store.MaxHops+1], now, last)
	res, err = s.Update(t.Context(), in(shop, hashes[1], "alice", now, &session.Patch{Set: map[string]string{"cart": "2"}}))
	wantResult(t, "update through the rest of the chain", res, err,
		hashes[store.MaxHops+1], map[string]string{"user": "alice", "cart": "2"}, true)
}

// testForwardActed: Result.Acted names the session an update read and
// acted on: the presented one, or the successor it reached through one
// forward record or several, which it may have ended or moved on. A
// caller that keeps copies of sessions by hash (on_store_error stale)
// learns from it what to forget: the presented hash is only a forward
// record, and Result.Hash is where the session went, or nothing.
func testForwardActed(t *testing.T, s store.Store) {
	renew := &session.Patch{Renew: true}
	for i, c := range []struct {
		name string
		hops int // rotations since the request loaded the session
		// patch is the request's change; moves gives it a NewHash.
		patch *session.Patch
		moves bool
		ends  bool // no record afterwards
	}{
		{"a write in place", 0, &session.Patch{Set: map[string]string{"cart": "1"}}, false, false},
		{"a renewal", 0, renew, true, false},
		{"a logout", 0, &session.Patch{Destroy: true}, false, true},
		{"a write through a forward record", 1, &session.Patch{Set: map[string]string{"cart": "1"}}, false, false},
		{"a renewal through a forward record", 1, renew, true, false},
		{"a login through a forward record", 1, &session.Patch{Set: map[string]string{"user": "bob"}}, true, false},
		{"a logout through a forward record", 1, &session.Patch{Destroy: true}, false, true},
		{"a logout and a new session through a forward record", 1, &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}}, true, false},
		{"a logout through two forward records", 2, &session.Patch{Destroy: true}, false, true},
		{"a renewal through two forward records", 2, renew, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			link := func(n int) session.Hash { return hashOf(fmt.Sprintf("acted%d-%d", i, n)) }
			fresh := hashOf(fmt.Sprintf("acted%d-fresh", i))
			createIn(t, s, shop, link(0), base, map[string]string{"user": "alice"})
			for n := range c.hops {
				rotate(t, s, shop, link(n), link(n+1), "alice", base.Add(time.Duration(n+1)*time.Second), nil)
			}
			now := base.Add(time.Minute)
			u := in(shop, link(0), "alice", now, c.patch)
			if c.moves {
				u.NewHash = ptr(fresh)
			}
			res, err := s.Update(t.Context(), u)
			acted := link(c.hops)
			switch {
			case err != nil:
				t.Fatalf("Update: %v", err)
			case res.Acted != acted:
				t.Fatalf("Result.Acted = %s, want %s, the session reached through %d forward records (presented %s)",
					res.Acted.Short(), acted.Short(), c.hops, link(0).Short())
			case res.Followed != (c.hops > 0):
				t.Fatalf("Result.Followed = %v after %d forward records", res.Followed, c.hops)
			case c.ends != (res.Record == nil):
				t.Fatalf("Update returned %+v; want a record: %v", res, !c.ends)
			case !c.ends && (res.Hash == acted) == c.moves:
				t.Fatalf("Result.Hash = %s, Acted %s: want it moved: %v", res.Hash.Short(), acted.Short(), c.moves)
			}
			// What it names is what the store ended or moved.
			switch {
			case c.moves:
				wantForwardOrGone(t, s, acted, now)
			case c.ends:
				wantGone(t, s, acted, now)
			default:
				load(t, s, acted, now)
			}
		})
	}

	// An update that presents no session acts on none.
	res, err := s.Update(t.Context(), store.Update{NewHash: ptr(hashOf("acted-new")), Patch: &session.Patch{Set: map[string]string{"user": "carol"}},
		Identity: identity, Realm: shop, Now: base, Timeouts: timeouts, Limits: limits})
	if err != nil || res.Acted != (session.Hash{}) {
		t.Fatalf("creating a session: %+v, %v; want Acted zero", res, err)
	}
}

// wantForwardOrGone checks that no session is stored under hash at now: a
// session that moved leaves a forward record, one that ended and started
// anew leaves none.
func wantForwardOrGone(t *testing.T, s store.Store, hash session.Hash, now time.Time) {
	t.Helper()
	rec, err := s.Load(t.Context(), hash, now, timeouts)
	if err == nil && !rec.Forwarded() {
		t.Fatalf("loading %s at %s: %+v, want no session", hash.Short(), now.Sub(base), rec)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("loading %s at %s: %v", hash.Short(), now.Sub(base), err)
	}
}

// testForwardExpiry: a forward record ends session.ForwardTTL after the
// rotation, or with the session if that is sooner, and then leads nowhere.
func testForwardExpiry(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	at := base.Add(time.Minute)
	rotate(t, s, shop, old, renewed, "alice", at, nil)
	end := at.Add(session.ForwardTTL)
	wantForward(t, s, old, renewed, end.Add(-time.Nanosecond))
	wantGone(t, s, old, end)
	res, err := s.Update(t.Context(), in(shop, old, "alice", end, &session.Patch{Set: map[string]string{"cart": "1"}}))
	wantErr(t, "update through an expired forward record", res, err, store.ErrNotFound)
	if got := load(t, s, renewed, end); got.Values["cart"] != "" {
		t.Fatalf("an update through an expired forward record reached the session: %v", got.Values)
	}

	// A session about to end leaves a forward record that ends with it.
	short := session.Timeouts{Idle: time.Hour, Absolute: time.Hour, TouchInterval: time.Second}
	a, b := hashOf("short-a"), hashOf("short-b")
	u := store.Update{NewHash: ptr(a), Patch: &session.Patch{Set: map[string]string{"user": "bob"}},
		Identity: identity, Realm: shop, Now: base, Timeouts: short, Limits: limits}
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	u = in(shop, a, "bob", base.Add(59*time.Minute+30*time.Second), &session.Patch{Renew: true})
	u.NewHash, u.Timeouts = ptr(b), short
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Load(t.Context(), a, base.Add(time.Hour-time.Nanosecond), short); err != nil || !rec.Forwarded() {
		t.Fatalf("the forward record just before the session's end: %+v, %v", rec, err)
	}
	if rec, err := s.Load(t.Context(), a, base.Add(time.Hour), short); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the forward record at the session's end: %+v, %v; want ErrNotFound", rec, err)
	}
}

// testForwardNotASession: Count, List, Delete and DeleteByIdentity see
// sessions only.
func testForwardNotASession(t *testing.T, s store.Store) {
	old, renewed, other := hashOf("old"), hashOf("renewed"), hashOf("other")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	createIn(t, s, shop, other, base, map[string]string{"user": "bob"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	now := base.Add(time.Minute)
	wantCount(t, s, now, 2)
	for _, limit := range []int{1, 2, 10} {
		all := listAll(t, s, limit, now, 5)
		if len(all) != 2 {
			t.Fatalf("List with limit %d returned %d entries, want the 2 sessions", limit, len(all))
		}
		for _, e := range all {
			if e.Hash == old || e.Record.Forwarded() {
				t.Fatalf("List with limit %d returned the forward record %s", limit, e.Hash.Short())
			}
		}
	}
	if err := s.Delete(t.Context(), old); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of a forward record: %v, want ErrNotFound", err)
	}
	load(t, s, renewed, now)
	deleteByIdentityIn(t, s, shop, "user", "alice", 1)
	wantGone(t, s, renewed, now)
	wantCount(t, s, now, 1)
}

// testForwardOtherRealm: a forward record is of the realm that left it.
func testForwardOtherRealm(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	now := base.Add(time.Minute)
	before := load(t, s, renewed, now)
	res, err := s.Update(t.Context(), in(admin, old, "alice", now, &session.Patch{Set: map[string]string{"role": "admin"}}))
	wantErr(t, "update through another realm's forward record", res, err, store.ErrNotFound)
	wantSame(t, s, "an update from another realm", renewed, now, before)
}
