package storetest

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The tests of updates that do not touch (store.Update.NoTouch): a request
// that reads without extending the session, such as a poll. Whatever they
// change, the session keeps its LastSeen and idle deadline, and ends then.

// untouched is in for an update that does not touch.
func untouched(realm string, hash session.Hash, seen string, now time.Time, patch *session.Patch) store.Update {
	u := in(realm, hash, seen, now, patch)
	u.NoTouch = true
	return u
}

// testNoTouchWrite: keys set without a touch are stored, and the session
// still ends at the idle deadline it had, in Load, Count and the index.
func testNoTouchWrite(t *testing.T, s store.Store) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice", "theme": "dark"})
	res, err := s.Update(t.Context(), untouched(shop, h, "alice", base.Add(10*time.Minute),
		&session.Patch{Set: map[string]string{"cart": "3"}, Delete: []string{"theme"}}))
	want := map[string]string{"user": "alice", "cart": "3"}
	wantResult(t, "an update without a touch", res, err, h, want, false)
	wantRecord(t, "Update's record", res.Record, 0, 0, 30*time.Minute, 12*time.Hour, want)
	wantRecord(t, "Load after the update", load(t, s, h, base.Add(29*time.Minute)), 0, 0, 30*time.Minute, 12*time.Hour, want)
	wantCount(t, s, base.Add(29*time.Minute), 1)
	wantGone(t, s, h, base.Add(30*time.Minute))
	wantCount(t, s, base.Add(30*time.Minute), 0)
	// The identity index still holds it.
	deleteByIdentityIn(t, s, shop, identity, "alice", 1)
	wantGone(t, s, h, base.Add(time.Minute))
}

// testNoTouchTouchOnly: a touch that does not touch writes nothing and
// returns the session as it stands.
func testNoTouchTouchOnly(t *testing.T, s store.Store) {
	h := hashOf("a")
	values := map[string]string{"user": "alice"}
	before := createIn(t, s, shop, h, base, values)
	res, err := s.Update(t.Context(), untouched(shop, h, "alice", base.Add(20*time.Minute), nil))
	wantResult(t, "a touch alone without a touch", res, err, h, values, false)
	wantRecord(t, "Update's record", res.Record, 0, 0, 30*time.Minute, 12*time.Hour, values)
	wantSame(t, s, "a touch alone without a touch", h, base.Add(29*time.Minute), before)
	wantGone(t, s, h, base.Add(30*time.Minute))
}

// testNoTouchRenew: a rotation without a touch moves the session to its
// new ID with the LastSeen and idle deadline it had, and the forward record
// left behind ends no later than the session.
func testNoTouchRenew(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"cart": "3"})
	u := untouched(shop, old, "", base.Add(20*time.Minute), &session.Patch{Renew: true, Set: map[string]string{"user": "alice"}})
	u.NewHash = ptr(renewed)
	res, err := s.Update(t.Context(), u)
	want := map[string]string{"user": "alice", "cart": "3"}
	wantResult(t, "a login without a touch", res, err, renewed, want, false)
	wantRecord(t, "Update's record", res.Record, 0, 0, 30*time.Minute, 12*time.Hour, want)
	wantForward(t, s, old, renewed, base.Add(21*time.Minute))
	wantRecord(t, "Load of the renewed session", load(t, s, renewed, base.Add(29*time.Minute)), 0, 0, 30*time.Minute, 12*time.Hour, want)
	wantGone(t, s, renewed, base.Add(30*time.Minute))
	wantCount(t, s, base.Add(30*time.Minute), 0)

	// Near the idle deadline the forward record ends with the session,
	// not session.ForwardTTL later.
	next := hashOf("next")
	createIn(t, s, shop, next, base.Add(time.Hour), map[string]string{"user": "bob"})
	u = untouched(shop, next, "bob", base.Add(time.Hour+29*time.Minute), &session.Patch{Renew: true})
	u.NewHash = ptr(hashOf("last"))
	res, err = s.Update(t.Context(), u)
	wantResult(t, "a renewal without a touch near the idle deadline", res, err, hashOf("last"), map[string]string{"user": "bob"}, false)
	wantForward(t, s, next, hashOf("last"), base.Add(time.Hour+30*time.Minute-time.Nanosecond))
	wantGone(t, s, next, base.Add(time.Hour+30*time.Minute))
	wantGone(t, s, hashOf("last"), base.Add(time.Hour+30*time.Minute))
}

// testNoTouchFollowed: an update without a touch that reaches the session
// through a forward record leaves the successor's deadlines alone too.
func testNoTouchFollowed(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil) // touched at 1m
	res, err := s.Update(t.Context(), untouched(shop, old, "alice", base.Add(2*time.Minute), &session.Patch{Set: map[string]string{"cart": "1"}}))
	want := map[string]string{"user": "alice", "cart": "1"}
	wantResult(t, "an update without a touch through a forward record", res, err, renewed, want, true)
	wantRecord(t, "Update's record", res.Record, 0, time.Minute, 31*time.Minute, 12*time.Hour, want)
	got := load(t, s, renewed, base.Add(30*time.Minute))
	wantRecord(t, "Load of the successor", got, 0, time.Minute, 31*time.Minute, 12*time.Hour, want)
	wantGone(t, s, renewed, base.Add(31*time.Minute))
}

// testNoTouchCreate: a session started without a touch is new all the
// same: created and last seen at Now.
func testNoTouchCreate(t *testing.T, s store.Store) {
	h := hashOf("a")
	u := untouched(shop, h, "", base, &session.Patch{Set: map[string]string{"cart": "1"}})
	u.HasHash, u.Hash, u.NewHash = false, session.Hash{}, ptr(h)
	res, err := s.Update(t.Context(), u)
	wantResult(t, "a creation without a touch", res, err, h, map[string]string{"cart": "1"}, false)
	wantRecord(t, "Update's record", res.Record, 0, 0, 30*time.Minute, 12*time.Hour, map[string]string{"cart": "1"})
	load(t, s, h, base.Add(29*time.Minute))
}
