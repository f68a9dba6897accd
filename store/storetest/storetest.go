// Package storetest is the conformance suite of store.Store: every
// implementation runs it from its own tests, so all of them keep sessions
// the same way and the handler can rely on the semantics documented in
// package store rather than on one implementation's habits.
//
// The suite never sleeps: every method takes the time as a parameter, and
// the suite moves a fixed base time forward by adding durations. Its times
// are in 2025, so a store must judge expiry by the times it is given, never
// by the wall clock: a Redis store, for instance, sets each key's TTL from
// the record's deadline minus Update.Now.
//
// Subtests run one after another, each on a fresh store from open, so a
// store backed by a shared server can flush it in open.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// base is the suite's "now". It has nanoseconds and a zone other than UTC so
// that a store that drops precision or compares times with == is caught.
var base = time.Date(2025, time.March, 14, 9, 26, 53, 589793238, time.FixedZone("UTC+1", 3600))

// timeouts are the default timeouts of the suite; tests that need shorter
// ones say so.
var timeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}

// limits are generous, so that only the tests about limits hit them.
var limits = session.Limits{Keys: 64, ValueSize: 4 << 10, SessionSize: 16 << 10}

// identity is the identity key the suite indexes sessions under.
const identity = "user"

// Run runs the conformance suite against the store that open returns.
// open must return a fresh, empty store each time it is called; the suite
// closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"LoadUnknown", testLoadUnknown},
		{"CanceledContext", testCanceledContext},
		{"Create", testCreate},
		{"CreateNeedsNewHash", testCreateNeedsNewHash},
		{"SetAndDelete", testSetAndDelete},
		{"ExpiryIdle", testExpiryIdle},
		{"ExpiryAbsolute", testExpiryAbsolute},
		{"ExpiryByShorterTimeouts", testExpiryByShorterTimeouts},
		{"UpdateMissing", testUpdateMissing},
		{"UpdateExpiredRemovesIt", testUpdateExpiredRemovesIt},
		{"UpdateExpiredByTimeoutsRemovesIt", testUpdateExpiredByTimeoutsRemovesIt},
		{"UpdateExpiredWithNewHashIsNotFound", testUpdateExpiredWithNewHashIsNotFound},
		{"TouchOnly", testTouchOnly},
		{"NoTouchWrite", testNoTouchWrite},
		{"NoTouchTouchOnly", testNoTouchTouchOnly},
		{"NoTouchRenew", testNoTouchRenew},
		{"NoTouchFollowed", testNoTouchFollowed},
		{"NoTouchCreate", testNoTouchCreate},
		{"Renew", testRenew},
		{"RenewWithChanges", testRenewWithChanges},
		{"Destroy", testDestroy},
		{"DestroyMissing", testDestroyMissing},
		{"DestroyAndSet", testDestroyAndSet},
		{"DestroyAndSetNeedsNewHash", testDestroyAndSetNeedsNewHash},
		{"LimitKeys", testLimitKeys},
		{"LimitSessionSize", testLimitSessionSize},
		{"LimitOnNewSession", testLimitOnNewSession},
		{"LimitAbortsRenewal", testLimitAbortsRenewal},
		{"LimitAbortsDestroy", testLimitAbortsDestroy},
		{"TwinKeyConflict", testTwinKeyConflict},
		{"ConcurrentKeys", testConcurrentKeys},
		{"ConcurrentSessions", testConcurrentSessions},
		{"Delete", testDelete},
		{"DeleteByIdentity", testDeleteByIdentity},
		{"IdentityFollowsRename", testIdentityFollowsRename},
		{"IdentityFollowsRemovedKey", testIdentityFollowsRemovedKey},
		{"IdentityFollowsRenewal", testIdentityFollowsRenewal},
		{"IdentityFollowsDestroy", testIdentityFollowsDestroy},
		{"IdentityFollowsExpiry", testIdentityFollowsExpiry},
		{"IdentityFollowsDelete", testIdentityFollowsDelete},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"ListOnePage", testListOnePage},
		{"ListWhileChanging", testListWhileChanging},
		{"Count", testCount},
		{"ReturnsCopies", testReturnsCopies},
		{"RealmStamped", testRealmStamped},
		{"RealmOther", testRealmOther},
		{"RealmLegacyAdopted", testRealmLegacyAdopted},
		{"DeleteByIdentityPerRealm", testDeleteByIdentityPerRealm},
		{"ForwardFollowed", testForwardFollowed},
		{"ForwardStale", testForwardStale},
		{"ForwardTouchOnly", testForwardTouchOnly},
		{"ForwardDestroy", testForwardDestroy},
		{"ForwardSuccessorGone", testForwardSuccessorGone},
		{"ForwardChain", testForwardChain},
		{"ForwardActed", testForwardActed},
		{"ForwardExpiry", testForwardExpiry},
		{"ForwardNotASession", testForwardNotASession},
		{"ForwardOtherRealm", testForwardOtherRealm},
		{"ListByIdentity", testListByIdentity},
		{"ListByIdentityPerRealm", testListByIdentityPerRealm},
		{"ListByIdentityForward", testListByIdentityForward},
		{"ListByIdentityExpiry", testListByIdentityExpiry},
		{"ListByIdentityFollowsChanges", testListByIdentityFollowsChanges},
		{"ListByIdentityCap", testListByIdentityCap},
		{"IdentityInEitherSpelling", testIdentityInEitherSpelling},
		{"UserAgentOnCreate", testUserAgentOnCreate},
		{"UserAgentKept", testUserAgentKept},
		{"Import", testImport},
		{"ImportAgain", testImportAgain},
		{"ImportKeepsLive", testImportKeepsLive},
		{"ImportKeepsForward", testImportKeepsForward},
		{"ImportOverExpired", testImportOverExpired},
		{"ImportRefused", testImportRefused},
		{"ImportRoundTrip", testImportRoundTrip},
		{"ListBadCursor", testListBadCursor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := opened(t, open)
			tc.run(t, s)
		})
	}
	// Close is tested on its own, since every other test closes its store
	// in a cleanup.
	t.Run("Close", func(t *testing.T) {
		s := open(t)
		create(t, s, hashOf("close"), base, map[string]string{"user": "alice"})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

// hashOf returns a fixed hash for a name, so that tests can refer to
// sessions by name and runs are reproducible.
func hashOf(name string) session.Hash { return session.HashID("storetest:" + name) }

func ptr(h session.Hash) *session.Hash { return &h }

// create starts a session under hash at now holding values, indexed by
// "user", and checks what Update returned.
func create(t *testing.T, s store.Store, hash session.Hash, now time.Time, values map[string]string) *session.Record {
	t.Helper()
	rec, err := record(s.Update(t.Context(), store.Update{
		NewHash:  ptr(hash),
		Patch:    &session.Patch{Set: maps.Clone(values)},
		Identity: identity,
		Now:      now,
		Timeouts: timeouts,
		Limits:   limits,
	}))
	if err != nil {
		t.Fatalf("creating session %s: %v", hash.Short(), err)
	}
	if rec == nil {
		t.Fatalf("creating session %s: Update returned no record", hash.Short())
	}
	if !maps.Equal(rec.Values, values) {
		t.Fatalf("creating session %s: values = %v, want %v", hash.Short(), rec.Values, values)
	}
	return rec
}

// update applies patch to the session under hash with the suite's
// timeouts and limits.
func update(t *testing.T, s store.Store, hash session.Hash, now time.Time, patch *session.Patch) (*session.Record, error) {
	t.Helper()
	return record(s.Update(t.Context(), store.Update{
		Hash:     hash,
		HasHash:  true,
		Patch:    patch,
		Identity: identity,
		Now:      now,
		Timeouts: timeouts,
		Limits:   limits,
	}))
}

// record is the record of an Update's result, for the tests that care
// about nothing else.
func record(res store.Result, err error) (*session.Record, error) {
	return res.Record, err
}

// mustUpdate is update for a change that has to succeed and leave a record.
func mustUpdate(t *testing.T, s store.Store, hash session.Hash, now time.Time, patch *session.Patch) *session.Record {
	t.Helper()
	rec, err := update(t, s, hash, now, patch)
	if err != nil {
		t.Fatalf("updating session %s: %v", hash.Short(), err)
	}
	if rec == nil {
		t.Fatalf("updating session %s: Update returned no record", hash.Short())
	}
	return rec
}

// load returns the live record under hash at now with the suite's timeouts.
func load(t *testing.T, s store.Store, hash session.Hash, now time.Time) *session.Record {
	t.Helper()
	rec, err := s.Load(t.Context(), hash, now, timeouts)
	if err != nil {
		t.Fatalf("loading session %s at %s: %v", hash.Short(), now.Sub(base), err)
	}
	if rec == nil {
		t.Fatalf("loading session %s: Load returned a nil record and no error", hash.Short())
	}
	return rec
}

// wantGone checks that no live session is stored under hash at now.
func wantGone(t *testing.T, s store.Store, hash session.Hash, now time.Time) {
	t.Helper()
	rec, err := s.Load(t.Context(), hash, now, timeouts)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("loading session %s at %s: got (%v, %v), want ErrNotFound", hash.Short(), now.Sub(base), rec, err)
	}
}

// wantForward checks that the record under hash at now is a forward
// record to next.
func wantForward(t *testing.T, s store.Store, hash, next session.Hash, now time.Time) *session.Record {
	t.Helper()
	rec, err := s.Load(t.Context(), hash, now, timeouts)
	if err != nil {
		t.Fatalf("loading %s at %s: %v, want a forward record", hash.Short(), now.Sub(base), err)
	}
	if !rec.Forwarded() || *rec.Successor != next {
		t.Fatalf("loading %s at %s: %+v, want a forward record to %s", hash.Short(), now.Sub(base), rec, next.Short())
	}
	if len(rec.Values) != 0 {
		t.Fatalf("forward record %s holds values %v", hash.Short(), rec.Values)
	}
	return rec
}

// wantNotFound checks that err is ErrNotFound.
func wantNotFound(t *testing.T, what string, rec *session.Record, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: got (%v, %v), want ErrNotFound", what, rec, err)
	}
}

// wantRuleError checks that err is a *session.RuleError with reason.
func wantRuleError(t *testing.T, what string, rec *session.Record, err error, reason string) {
	t.Helper()
	var re *session.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("%s: got (%v, %v), want a *session.RuleError %q", what, rec, err, reason)
	}
	if re.Reason != reason {
		t.Fatalf("%s: RuleError reason = %q (%v), want %q", what, re.Reason, re, reason)
	}
	if rec != nil {
		t.Fatalf("%s: Update returned a record with its RuleError", what)
	}
}

// wantCount checks Count at now.
func wantCount(t *testing.T, s store.Store, now time.Time, want int) {
	t.Helper()
	n, err := s.Count(t.Context(), now)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if n != want {
		t.Fatalf("Count at %s = %d, want %d", now.Sub(base), n, want)
	}
}

// deleteByIdentity calls DeleteByIdentity in no realm, as the tests that
// are not about realms write, and checks how many it removed.
func deleteByIdentity(t *testing.T, s store.Store, key, value string, want int) {
	t.Helper()
	deleteByIdentityIn(t, s, "", key, value, want)
}

// deleteByIdentityIn calls DeleteByIdentity in realm and checks how many
// it removed.
func deleteByIdentityIn(t *testing.T, s store.Store, realm, key, value string, want int) {
	t.Helper()
	n, err := s.DeleteByIdentity(t.Context(), realm, key, value)
	if err != nil {
		t.Fatalf("DeleteByIdentity(%q, %q, %q): %v", realm, key, value, err)
	}
	if n != want {
		t.Fatalf("DeleteByIdentity(%q, %q, %q) removed %d sessions, want %d", realm, key, value, n, want)
	}
}

// diff describes how got differs from want, or returns "" if they are the
// same record: same instants (whatever the zone) and the same values.
func diff(got, want *session.Record) string {
	var d []string
	field := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s = %s, want %s", name, g.Sub(base), w.Sub(base)))
		}
	}
	field("Created", got.Created, want.Created)
	field("LastSeen", got.LastSeen, want.LastSeen)
	field("IdleDeadline", got.IdleDeadline, want.IdleDeadline)
	field("AbsoluteDeadline", got.AbsoluteDeadline, want.AbsoluteDeadline)
	if !maps.Equal(got.Values, want.Values) {
		d = append(d, fmt.Sprintf("Values = %v, want %v", got.Values, want.Values))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// wantRecord checks a record against the one expected. Times are given as
// offsets from base.
func wantRecord(t *testing.T, what string, got *session.Record, created, lastSeen, idle, absolute time.Duration, values map[string]string) {
	t.Helper()
	want := &session.Record{
		Created:          base.Add(created),
		LastSeen:         base.Add(lastSeen),
		IdleDeadline:     base.Add(idle),
		AbsoluteDeadline: base.Add(absolute),
		Values:           values,
	}
	if d := diff(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func testLoadUnknown(t *testing.T, s store.Store) {
	rec, err := s.Load(t.Context(), hashOf("unknown"), base, timeouts)
	wantNotFound(t, "Load of an unknown hash", rec, err)
}

// testCanceledContext: a canceled request's context stops the operation
// with an error (never ErrNotFound, which would read as "anonymous"), and
// the update changes nothing.
func testCanceledContext(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Load(ctx, h, base, timeouts); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load with a canceled context = %v, want an error other than ErrNotFound", err)
	}
	_, err := s.Update(ctx, store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "1"}},
		Identity: identity, Now: base, Timeouts: timeouts, Limits: limits})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update with a canceled context = %v, want an error other than ErrNotFound", err)
	}
	rec, err := s.Load(t.Context(), h, base, timeouts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Values["cart"]; ok {
		t.Error("an Update with a canceled context changed the session")
	}
}

func testCreate(t *testing.T, s store.Store) {
	h := hashOf("a")
	values := map[string]string{"user": "alice", "cart": "3", "empty": ""}
	rec := create(t, s, h, base, values)
	wantRecord(t, "Update's record", rec, 0, 0, 30*time.Minute, 12*time.Hour, values)
	want := timeouts.NewRecord(base)
	want.Values = values
	if d := diff(rec, want); d != "" {
		t.Fatalf("record differs from Timeouts.NewRecord: %s", d)
	}
	got := load(t, s, h, base.Add(time.Minute))
	if d := diff(got, rec); d != "" {
		t.Fatalf("Load after create: %s", d)
	}
	wantGone(t, s, hashOf("other"), base)
	wantCount(t, s, base, 1)
}

func testCreateNeedsNewHash(t *testing.T, s store.Store) {
	rec, err := record(s.Update(t.Context(), store.Update{
		Patch:    &session.Patch{Set: map[string]string{"user": "alice"}},
		Identity: identity,
		Now:      base,
		Timeouts: timeouts,
		Limits:   limits,
	}))
	if err == nil {
		t.Fatalf("Update creating a session without NewHash returned %v and no error", rec)
	}
	wantCount(t, s, base, 0)
	deleteByIdentity(t, s, "user", "alice", 0)
}

func testSetAndDelete(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"a": "1", "b": "2", "c": "3"})
	rec := mustUpdate(t, s, h, base.Add(2*time.Minute), &session.Patch{
		Set:    map[string]string{"b": "20", "d": "4"},
		Delete: []string{"c", "never-set"},
	})
	want := map[string]string{"a": "1", "b": "20", "d": "4"}
	wantRecord(t, "Update's record", rec, 0, 2*time.Minute, 32*time.Minute, 12*time.Hour, want)
	got := load(t, s, h, base.Add(3*time.Minute))
	wantRecord(t, "Load after update", got, 0, 2*time.Minute, 32*time.Minute, 12*time.Hour, want)

	// Deleting every key leaves an empty, live session.
	rec = mustUpdate(t, s, h, base.Add(4*time.Minute), &session.Patch{Delete: []string{"a", "b", "d"}})
	if len(rec.Values) != 0 {
		t.Fatalf("values after deleting all keys = %v, want none", rec.Values)
	}
	if got := load(t, s, h, base.Add(5*time.Minute)); len(got.Values) != 0 {
		t.Fatalf("loaded values after deleting all keys = %v, want none", got.Values)
	}
}

func testExpiryIdle(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice"})
	load(t, s, h, base.Add(30*time.Minute-time.Nanosecond))
	// The deadline itself is past: Expired is !now.Before(deadline).
	wantGone(t, s, h, base.Add(30*time.Minute))
	wantGone(t, s, h, base.Add(31*time.Minute))
	wantCount(t, s, base.Add(30*time.Minute), 0)
	wantCount(t, s, base.Add(29*time.Minute), 1)
}

func testExpiryAbsolute(t *testing.T, s store.Store) {
	short := session.Timeouts{Idle: 30 * time.Minute, Absolute: time.Hour, TouchInterval: time.Minute}
	h := hashOf("a")
	u := store.Update{
		NewHash:  ptr(h),
		Patch:    &session.Patch{Set: map[string]string{"user": "alice"}},
		Identity: identity,
		Now:      base,
		Timeouts: short,
		Limits:   limits,
	}
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	// Keep the session busy: it still ends an hour after its creation.
	for _, m := range []time.Duration{20, 40, 55} {
		rec, err := record(s.Update(t.Context(), store.Update{
			Hash: h, HasHash: true, Identity: identity,
			Now: base.Add(m * time.Minute), Timeouts: short, Limits: limits,
		}))
		if err != nil {
			t.Fatalf("touch at %dm: %v", m, err)
		}
		if rec.IdleDeadline.After(base.Add(time.Hour)) {
			t.Fatalf("touch at %dm: idle deadline %s is past the absolute deadline", m, rec.IdleDeadline.Sub(base))
		}
	}
	if _, err := s.Load(t.Context(), h, base.Add(time.Hour-time.Nanosecond), short); err != nil {
		t.Fatalf("Load just before the absolute deadline: %v", err)
	}
	rec, err := s.Load(t.Context(), h, base.Add(time.Hour), short)
	wantNotFound(t, "Load at the absolute deadline", rec, err)
	// Even with longer timeouts, the stored deadline holds.
	rec, err = s.Load(t.Context(), h, base.Add(time.Hour), timeouts)
	wantNotFound(t, "Load at the stored absolute deadline with longer timeouts", rec, err)
}

func testExpiryByShorterTimeouts(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice"})
	now := base.Add(10 * time.Minute)
	shorterIdle := session.Timeouts{Idle: 10 * time.Minute, Absolute: 12 * time.Hour}
	rec, err := s.Load(t.Context(), h, now, shorterIdle)
	wantNotFound(t, "Load with a shorter idle timeout", rec, err)
	shorterAbsolute := session.Timeouts{Idle: 30 * time.Minute, Absolute: 10 * time.Minute}
	rec, err = s.Load(t.Context(), h, now, shorterAbsolute)
	wantNotFound(t, "Load with a shorter absolute timeout", rec, err)
	// Load only reads: the configured timeouts still find the session.
	load(t, s, h, now)
}

func testUpdateMissing(t *testing.T, s store.Store) {
	h := hashOf("missing")
	rec, err := update(t, s, h, base, &session.Patch{Set: map[string]string{"user": "alice"}})
	wantNotFound(t, "Update setting keys on a missing session", rec, err)
	rec, err = update(t, s, h, base, nil)
	wantNotFound(t, "touch of a missing session", rec, err)
	rec, err = update(t, s, h, base, &session.Patch{Renew: true})
	wantNotFound(t, "renew flag without NewHash on a missing session", rec, err)
	wantCount(t, s, base, 0)
}

func testUpdateExpiredRemovesIt(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice", "cart": "3"})
	rec, err := update(t, s, h, base.Add(31*time.Minute), &session.Patch{Set: map[string]string{"cart": "4"}})
	wantNotFound(t, "Update of an expired session", rec, err)
	// Counted at base, the record would be live if it were still stored.
	wantCount(t, s, base, 0)
	wantGone(t, s, h, base)
}

func testUpdateExpiredByTimeoutsRemovesIt(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice"})
	now := base.Add(10 * time.Minute)
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: h, HasHash: true, Identity: identity, Now: now,
		Timeouts: session.Timeouts{Idle: 5 * time.Minute, Absolute: 12 * time.Hour},
		Limits:   limits,
	}))
	wantNotFound(t, "Update of a session expired by the timeouts passed", rec, err)
	// Its stored deadline has not passed, yet it is gone.
	wantCount(t, s, now, 0)
	wantGone(t, s, h, now)
}

// testUpdateExpiredWithNewHashIsNotFound: the keys of a request whose
// session ended while it was in flight are dropped, not given to a new
// session, even with a NewHash to keep one under: the caller decides
// whether to start one.
func testUpdateExpiredWithNewHashIsNotFound(t *testing.T, s store.Store) {
	old, fresh := hashOf("old"), hashOf("fresh")
	create(t, s, old, base, map[string]string{"user": "alice", "cart": "3"})
	now := base.Add(time.Hour)
	for _, patch := range []*session.Patch{
		{Set: map[string]string{"user": "bob"}},
		{Renew: true, Set: map[string]string{"user": "bob"}},
		{Destroy: true, Set: map[string]string{"user": "bob"}},
	} {
		rec, err := record(s.Update(t.Context(), store.Update{
			Hash: old, HasHash: true, NewHash: ptr(fresh), Patch: patch,
			Identity: identity, Now: now, Timeouts: timeouts, Limits: limits,
		}))
		wantNotFound(t, "Update of an expired session with NewHash", rec, err)
		wantGone(t, s, fresh, now)
	}
	// The expired session was removed: counted at base, it would be live.
	wantCount(t, s, base, 0)
	deleteByIdentity(t, s, "user", "alice", 0)
	deleteByIdentity(t, s, "user", "bob", 0)
}

func testTouchOnly(t *testing.T, s store.Store) {
	short := session.Timeouts{Idle: 30 * time.Minute, Absolute: time.Hour, TouchInterval: time.Minute}
	h := hashOf("a")
	values := map[string]string{"user": "alice"}
	touch := func(at time.Duration) *session.Record {
		t.Helper()
		rec, err := record(s.Update(t.Context(), store.Update{
			Hash: h, HasHash: true, Identity: identity,
			Now: base.Add(at), Timeouts: short, Limits: limits,
		}))
		if err != nil {
			t.Fatalf("touch at %s: %v", at, err)
		}
		return rec
	}
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(h), Patch: &session.Patch{Set: maps.Clone(values)}, Identity: identity,
		Now: base, Timeouts: short, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	rec := touch(10 * time.Minute)
	wantRecord(t, "first touch", rec, 0, 10*time.Minute, 40*time.Minute, time.Hour, values)
	got, err := s.Load(t.Context(), h, base.Add(11*time.Minute), short)
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "Load after first touch", got, 0, 10*time.Minute, 40*time.Minute, time.Hour, values)
	// Without the touch this Load would be past the first idle deadline.
	if _, err := s.Load(t.Context(), h, base.Add(35*time.Minute), short); err != nil {
		t.Fatalf("Load after the first idle deadline, which the touch moved: %v", err)
	}

	rec = touch(39 * time.Minute)
	wantRecord(t, "touch near the absolute deadline", rec, 0, 39*time.Minute, time.Hour, time.Hour, values)
	got, err = s.Load(t.Context(), h, base.Add(46*time.Minute), short)
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "Load after second touch", got, 0, 39*time.Minute, time.Hour, time.Hour, values)
	rec2, err := s.Load(t.Context(), h, base.Add(time.Hour), short)
	wantNotFound(t, "Load at the absolute deadline", rec2, err)
}

func testRenew(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	values := map[string]string{"user": "alice", "cart": "3"}
	create(t, s, old, base, values)
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(renewed),
		Patch:    &session.Patch{Renew: true},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: limits,
	}))
	if err != nil {
		t.Fatalf("renewal: %v", err)
	}
	wantRecord(t, "renewed record", rec, 0, 5*time.Minute, 35*time.Minute, 12*time.Hour, values)
	// The old hash holds no session: only a forward record to the new.
	wantForward(t, s, old, renewed, base.Add(5*time.Minute))
	got := load(t, s, renewed, base.Add(6*time.Minute))
	wantRecord(t, "loaded renewed record", got, 0, 5*time.Minute, 35*time.Minute, 12*time.Hour, values)
	wantCount(t, s, base.Add(6*time.Minute), 1)
	// A request through the old hash that saw no user (Seen "") does not
	// reach alice's session.
	r, err := update(t, s, old, base.Add(6*time.Minute), &session.Patch{Set: map[string]string{"cart": "9"}})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("Update through the old hash by a request that saw no user: got (%v, %v), want ErrStale", r, err)
	}
	if got := load(t, s, renewed, base.Add(7*time.Minute)); got.Values["cart"] != "3" {
		t.Fatalf("a stale update through the old hash reached the renewed session: %v", got.Values)
	}
}

func testRenewWithChanges(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	create(t, s, old, base, map[string]string{"user": "alice", "cart": "3"})
	// A login: renew, change the user and drop the cart, all at once.
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(renewed),
		Patch: &session.Patch{
			Renew:  true,
			Set:    map[string]string{"user": "bob", "role": "admin"},
			Delete: []string{"cart"},
		},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: limits,
	}))
	if err != nil {
		t.Fatalf("renewal with changes: %v", err)
	}
	want := map[string]string{"user": "bob", "role": "admin"}
	wantRecord(t, "renewed record", rec, 0, 5*time.Minute, 35*time.Minute, 12*time.Hour, want)
	got := load(t, s, renewed, base.Add(6*time.Minute))
	wantRecord(t, "loaded renewed record", got, 0, 5*time.Minute, 35*time.Minute, 12*time.Hour, want)
	wantForward(t, s, old, renewed, base.Add(6*time.Minute))
	wantCount(t, s, base.Add(6*time.Minute), 1)
}

func testDestroy(t *testing.T, s store.Store) {
	h, other := hashOf("a"), hashOf("b")
	create(t, s, h, base, map[string]string{"user": "alice"})
	create(t, s, other, base, map[string]string{"user": "bob"})
	rec, err := update(t, s, h, base.Add(time.Minute), &session.Patch{Destroy: true})
	if err != nil || rec != nil {
		t.Fatalf("Destroy: got (%v, %v), want (nil, nil)", rec, err)
	}
	wantGone(t, s, h, base.Add(time.Minute))
	load(t, s, other, base.Add(time.Minute))
	wantCount(t, s, base.Add(time.Minute), 1)
	r, err := update(t, s, h, base.Add(2*time.Minute), nil)
	wantNotFound(t, "touch after Destroy", r, err)
}

func testDestroyMissing(t *testing.T, s store.Store) {
	// Step 1 of Update: a missing record is not found, whatever the patch.
	rec, err := update(t, s, hashOf("missing"), base, &session.Patch{Destroy: true})
	wantNotFound(t, "Destroy of a missing session", rec, err)
	rec, err = record(s.Update(t.Context(), store.Update{
		Hash: hashOf("missing"), HasHash: true, NewHash: ptr(hashOf("fresh")),
		Patch:    &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}},
		Identity: identity, Now: base, Timeouts: timeouts, Limits: limits,
	}))
	wantNotFound(t, "Destroy and Set of a missing session", rec, err)
	wantGone(t, s, hashOf("fresh"), base)
	wantCount(t, s, base, 0)
}

func testDestroyAndSet(t *testing.T, s store.Store) {
	old, fresh := hashOf("old"), hashOf("fresh")
	create(t, s, old, base, map[string]string{"user": "alice", "cart": "3"})
	now := base.Add(10 * time.Minute)
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(fresh),
		Patch:    &session.Patch{Destroy: true, Set: map[string]string{"user": "bob"}},
		Identity: identity, Now: now, Timeouts: timeouts, Limits: limits,
	}))
	if err != nil {
		t.Fatalf("Destroy and Set: %v", err)
	}
	want := map[string]string{"user": "bob"}
	// A new session: created now, without the old keys.
	wantRecord(t, "new session", rec, 10*time.Minute, 10*time.Minute, 40*time.Minute, 12*time.Hour+10*time.Minute, want)
	got := load(t, s, fresh, now)
	wantRecord(t, "loaded new session", got, 10*time.Minute, 10*time.Minute, 40*time.Minute, 12*time.Hour+10*time.Minute, want)
	wantGone(t, s, old, now)
	wantCount(t, s, now, 1)
	deleteByIdentity(t, s, "user", "alice", 0)
	deleteByIdentity(t, s, "user", "bob", 1)
}

func testDestroyAndSetNeedsNewHash(t *testing.T, s store.Store) {
	h := hashOf("a")
	values := map[string]string{"user": "alice"}
	before := create(t, s, h, base, values)
	rec, err := update(t, s, h, base.Add(time.Minute), &session.Patch{Destroy: true, Set: map[string]string{"user": "bob"}})
	if err == nil {
		t.Fatalf("Destroy and Set without NewHash returned %v and no error", rec)
	}
	// The failed update changed nothing, not even the destroy.
	got := load(t, s, h, base.Add(2*time.Minute))
	if d := diff(got, before); d != "" {
		t.Fatalf("after a failed update: %s", d)
	}
}

// wantUnchanged checks that the session under h is still exactly before
// and that the store holds count live sessions.
func wantUnchanged(t *testing.T, s store.Store, h session.Hash, before *session.Record, count int) {
	t.Helper()
	got := load(t, s, h, base.Add(time.Minute))
	if d := diff(got, before); d != "" {
		t.Fatalf("a refused update changed the record: %s", d)
	}
	wantCount(t, s, base, count)
}

func testLimitKeys(t *testing.T, s store.Store) {
	h := hashOf("a")
	before := create(t, s, h, base, map[string]string{"a": "1", "b": "2"})
	lim := session.Limits{Keys: 3, SessionSize: 1 << 10}
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: h, HasHash: true,
		Patch:    &session.Patch{Set: map[string]string{"c": "3", "d": "4"}},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: lim,
	}))
	wantRuleError(t, "a patch over the key limit", rec, err, "too_many_keys")
	wantUnchanged(t, s, h, before, 1)
	// Replacing a key and deleting one to make room is within the limit.
	rec, err = record(s.Update(t.Context(), store.Update{
		Hash: h, HasHash: true,
		Patch:    &session.Patch{Set: map[string]string{"a": "10", "c": "3", "d": "4"}, Delete: []string{"b"}},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: lim,
	}))
	if err != nil {
		t.Fatalf("a patch at the key limit: %v", err)
	}
	if want := map[string]string{"a": "10", "c": "3", "d": "4"}; !maps.Equal(rec.Values, want) {
		t.Fatalf("values = %v, want %v", rec.Values, want)
	}
}

func testLimitSessionSize(t *testing.T, s store.Store) {
	h := hashOf("a")
	before := create(t, s, h, base, map[string]string{"user": "alice"}) // 9 bytes
	lim := session.Limits{Keys: 64, SessionSize: 32}
	u := store.Update{
		Hash: h, HasHash: true,
		// 9 + 4 + 20 = 33 bytes, one over.
		Patch:    &session.Patch{Set: map[string]string{"cart": "12345678901234567890"}},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: lim,
	}
	rec, err := record(s.Update(t.Context(), u))
	wantRuleError(t, "a patch over the size limit", rec, err, "session_too_large")
	wantUnchanged(t, s, h, before, 1)
	// One byte less fits exactly.
	u.Patch = &session.Patch{Set: map[string]string{"cart": "1234567890123456789"}}
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatalf("a patch at the size limit: %v", err)
	}
}

func testLimitOnNewSession(t *testing.T, s store.Store) {
	h := hashOf("a")
	rec, err := record(s.Update(t.Context(), store.Update{
		NewHash:  ptr(h),
		Patch:    &session.Patch{Set: map[string]string{"user": "alice", "a": "1", "b": "2"}},
		Identity: identity, Now: base, Timeouts: timeouts, Limits: session.Limits{Keys: 2},
	}))
	wantRuleError(t, "a new session over the key limit", rec, err, "too_many_keys")
	wantGone(t, s, h, base)
	wantCount(t, s, base, 0)
	deleteByIdentity(t, s, "user", "alice", 0)
}

func testLimitAbortsRenewal(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	before := create(t, s, old, base, map[string]string{"user": "alice"})
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(renewed),
		Patch:    &session.Patch{Renew: true, Set: map[string]string{"a": "1", "b": "2"}},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: session.Limits{Keys: 2},
	}))
	wantRuleError(t, "a renewal over the key limit", rec, err, "too_many_keys")
	// The old hash still works and the new one was never created.
	wantUnchanged(t, s, old, before, 1)
	wantGone(t, s, renewed, base.Add(time.Minute))
}

func testLimitAbortsDestroy(t *testing.T, s store.Store) {
	old, fresh := hashOf("old"), hashOf("fresh")
	before := create(t, s, old, base, map[string]string{"user": "alice"})
	rec, err := record(s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(fresh),
		Patch:    &session.Patch{Destroy: true, Set: map[string]string{"a": "1", "b": "2", "c": "3"}},
		Identity: identity, Now: base.Add(5 * time.Minute), Timeouts: timeouts, Limits: session.Limits{Keys: 2},
	}))
	wantRuleError(t, "Destroy and Set over the key limit", rec, err, "too_many_keys")
	wantUnchanged(t, s, old, before, 1)
	wantGone(t, s, fresh, base.Add(time.Minute))
}

func testTwinKeyConflict(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user-id": "1", "cart": "x"})
	// '_' and '-' are one key: setting the other spelling changes that key.
	want := map[string]string{"user-id": "2", "cart": "x"}
	if rec := mustUpdate(t, s, h, base.Add(5*time.Minute), &session.Patch{Set: map[string]string{"user_id": "2"}}); !maps.Equal(rec.Values, want) {
		t.Fatalf("values after setting user_id = %v, want %v", rec.Values, want)
	}
	if got := load(t, s, h, base.Add(5*time.Minute)); !maps.Equal(got.Values, want) {
		t.Fatalf("stored after setting user_id: %v, want %v", got.Values, want)
	}
	// Renaming in one patch, deleting the twin, is allowed.
	rec := mustUpdate(t, s, h, base.Add(6*time.Minute), &session.Patch{
		Set:    map[string]string{"user_id": "3"},
		Delete: []string{"user-id"},
	})
	want = map[string]string{"user_id": "3", "cart": "x"}
	if !maps.Equal(rec.Values, want) {
		t.Fatalf("values after the rename = %v, want %v", rec.Values, want)
	}
	// A delete in the other spelling removes the key.
	mustUpdate(t, s, h, base.Add(7*time.Minute), &session.Patch{Delete: []string{"user-id"}})
	want = map[string]string{"cart": "x"}
	if got := load(t, s, h, base.Add(7*time.Minute)); !maps.Equal(got.Values, want) {
		t.Fatalf("stored after deleting user-id: %v, want %v", got.Values, want)
	}
}

func testConcurrentKeys(t *testing.T, s store.Store) {
	const n = 32
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice"})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := s.Update(context.Background(), store.Update{
				Hash: h, HasHash: true,
				Patch:    &session.Patch{Set: map[string]string{fmt.Sprintf("k%02d", i): fmt.Sprint(i)}},
				Identity: identity,
				Now:      base.Add(time.Duration(i) * time.Second),
				Timeouts: timeouts, Limits: limits,
			})
			if err != nil {
				errs <- fmt.Errorf("goroutine %d: %w", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := load(t, s, h, base.Add(time.Minute))
	want := map[string]string{"user": "alice"}
	for i := range n {
		want[fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
	}
	if !maps.Equal(got.Values, want) {
		var lost []string
		for k := range want {
			if _, ok := got.Values[k]; !ok {
				lost = append(lost, k)
			}
		}
		slices.Sort(lost)
		t.Fatalf("concurrent updates lost keys %v", lost)
	}
}

func testConcurrentSessions(t *testing.T, s store.Store) {
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Update(context.Background(), store.Update{
				NewHash:  ptr(hashOf(fmt.Sprint(i))),
				Patch:    &session.Patch{Set: map[string]string{"user": "alice", "n": fmt.Sprint(i)}},
				Identity: identity, Now: base, Timeouts: timeouts, Limits: limits,
			})
			if err != nil {
				errs <- fmt.Errorf("goroutine %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantCount(t, s, base, n)
	for i := range n {
		if got := load(t, s, hashOf(fmt.Sprint(i)), base); got.Values["n"] != fmt.Sprint(i) {
			t.Fatalf("session %d holds %v", i, got.Values)
		}
	}
	deleteByIdentity(t, s, "user", "alice", n)
	wantCount(t, s, base, 0)
}

func testDelete(t *testing.T, s store.Store) {
	h, other := hashOf("a"), hashOf("b")
	create(t, s, h, base, map[string]string{"user": "alice"})
	create(t, s, other, base, map[string]string{"user": "bob"})
	if err := s.Delete(t.Context(), h); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantGone(t, s, h, base)
	load(t, s, other, base)
	wantCount(t, s, base, 1)
	if err := s.Delete(t.Context(), h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(t.Context(), hashOf("unknown")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of an unknown hash: %v, want ErrNotFound", err)
	}
}

func testDeleteByIdentity(t *testing.T, s store.Store) {
	for _, name := range []string{"alice1", "alice2", "alice3"} {
		create(t, s, hashOf(name), base, map[string]string{"user": "alice", "n": name})
	}
	create(t, s, hashOf("bob"), base, map[string]string{"user": "bob"})
	// Values that share a prefix with "alice", either way round.
	create(t, s, hashOf("ali"), base, map[string]string{"user": "ali"})
	create(t, s, hashOf("alicex"), base, map[string]string{"user": "alicex"})
	create(t, s, hashOf("anonymous"), base, map[string]string{"cart": "3"})
	// The same value under another key, or with no identity key at all, is
	// not the identity.
	create(t, s, hashOf("email"), base, map[string]string{"email": "alice"})
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(hashOf("unindexed")), Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
		Now: base, Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(hashOf("by-email")), Patch: &session.Patch{Set: map[string]string{"email": "alice", "user": "zed"}},
		Identity: "email", Now: base, Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}

	deleteByIdentity(t, s, "user", "alice", 3)
	for _, name := range []string{"alice1", "alice2", "alice3"} {
		wantGone(t, s, hashOf(name), base)
	}
	for _, name := range []string{"bob", "ali", "alicex", "anonymous", "email", "unindexed", "by-email"} {
		load(t, s, hashOf(name), base)
	}
	wantCount(t, s, base, 7)
	deleteByIdentity(t, s, "user", "alice", 0)
	deleteByIdentity(t, s, "user", "nobody", 0)
	deleteByIdentity(t, s, "user", "zed", 0)
	deleteByIdentity(t, s, "email", "alice", 1)
	wantGone(t, s, hashOf("by-email"), base)
	load(t, s, hashOf("email"), base)
}

func testIdentityFollowsRename(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice"})
	mustUpdate(t, s, h, base.Add(time.Minute), &session.Patch{Set: map[string]string{"user": "carol"}})
	deleteByIdentity(t, s, "user", "alice", 0)
	load(t, s, h, base.Add(time.Minute))
	deleteByIdentity(t, s, "user", "carol", 1)
	wantGone(t, s, h, base.Add(time.Minute))
}

func testIdentityFollowsRemovedKey(t *testing.T, s store.Store) {
	h := hashOf("a")
	create(t, s, h, base, map[string]string{"user": "alice", "cart": "3"})
	mustUpdate(t, s, h, base.Add(time.Minute), &session.Patch{Delete: []string{"user"}})
	deleteByIdentity(t, s, "user", "alice", 0)
	load(t, s, h, base.Add(time.Minute))
	// Setting it again indexes the session again.
	mustUpdate(t, s, h, base.Add(2*time.Minute), &session.Patch{Set: map[string]string{"user": "alice"}})
	deleteByIdentity(t, s, "user", "alice", 1)
}

func testIdentityFollowsRenewal(t *testing.T, s store.Store) {
	old, renewed := hashOf("old"), hashOf("renewed")
	create(t, s, old, base, map[string]string{"user": "alice"})
	if _, err := s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(renewed), Patch: &session.Patch{Renew: true},
		Identity: identity, Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	deleteByIdentity(t, s, "user", "alice", 1)
	wantGone(t, s, renewed, base.Add(time.Minute))
	// The forward record is no session: it leads nowhere now.
	r, err := record(s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "1"}},
		Identity: identity, Seen: "alice", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
	}))
	wantNotFound(t, "Update through the forward record of a deleted session", r, err)
	wantGone(t, s, renewed, base.Add(time.Minute))
	wantCount(t, s, base, 0)
}

func testIdentityFollowsDestroy(t *testing.T, s store.Store) {
	a, b, c := hashOf("a"), hashOf("b"), hashOf("c")
	create(t, s, a, base, map[string]string{"user": "alice"})
	create(t, s, b, base, map[string]string{"user": "alice"})
	if r, err := update(t, s, a, base.Add(time.Minute), &session.Patch{Destroy: true}); err != nil || r != nil {
		t.Fatalf("Destroy: got (%v, %v), want (nil, nil)", r, err)
	}
	deleteByIdentity(t, s, "user", "alice", 1)
	wantGone(t, s, b, base.Add(time.Minute))

	// A logout that starts an anonymous session leaves nothing of alice.
	create(t, s, a, base, map[string]string{"user": "alice"})
	if _, err := s.Update(t.Context(), store.Update{
		Hash: a, HasHash: true, NewHash: ptr(c),
		Patch:    &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}},
		Identity: identity, Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
	}); err != nil {
		t.Fatal(err)
	}
	deleteByIdentity(t, s, "user", "alice", 0)
	load(t, s, c, base.Add(time.Minute))
}

func testIdentityFollowsExpiry(t *testing.T, s store.Store) {
	early, late := hashOf("early"), hashOf("late")
	create(t, s, early, base, map[string]string{"user": "alice"})
	create(t, s, late, base.Add(40*time.Minute), map[string]string{"user": "alice"})
	// The early session has expired; touching it removes it.
	r, err := update(t, s, early, base.Add(40*time.Minute), nil)
	wantNotFound(t, "touch of an expired session", r, err)
	deleteByIdentity(t, s, "user", "alice", 1)
	wantGone(t, s, late, base.Add(40*time.Minute))
	wantCount(t, s, base.Add(40*time.Minute), 0)
}

func testIdentityFollowsDelete(t *testing.T, s store.Store) {
	a, b := hashOf("a"), hashOf("b")
	create(t, s, a, base, map[string]string{"user": "alice"})
	create(t, s, b, base, map[string]string{"user": "alice"})
	if err := s.Delete(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	deleteByIdentity(t, s, "user", "alice", 1)
}

// listAll pages through List with limit until the cursor comes back empty,
// checking that pages are bounded and never repeat a session. The order is
// the store's own.
func listAll(t *testing.T, s store.Store, limit int, now time.Time, maxPages int) []store.Entry {
	t.Helper()
	var all []store.Entry
	cursor := ""
	for page := 0; ; page++ {
		if page >= maxPages {
			t.Fatalf("List did not end after %d pages of %d", maxPages, limit)
		}
		entries, next, err := s.List(t.Context(), cursor, limit, now)
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		if len(entries) > limit {
			t.Fatalf("List page %d has %d entries, over the limit of %d", page, len(entries), limit)
		}
		for _, e := range entries {
			if e.Record == nil {
				t.Fatalf("List page %d: entry %s has no record", page, e.Hash.Short())
			}
			if slices.ContainsFunc(all, func(seen store.Entry) bool { return seen.Hash == e.Hash }) {
				t.Fatalf("List page %d: %s listed again", page, e.Hash.Short())
			}
			all = append(all, e)
		}
		if next == "" {
			return all
		}
		if len(entries) == 0 {
			t.Fatalf("List page %d is empty but has a next cursor %q", page, next)
		}
		cursor = next
	}
}

func testList(t *testing.T, s store.Store) {
	const live, expired = 23, 6
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
	want := map[session.Hash]string{}
	for i := range live {
		h := hashOf(fmt.Sprint("live", i))
		create(t, s, h, base, map[string]string{"n": fmt.Sprint(i)})
		want[h] = fmt.Sprint(i)
	}
	for i := range expired {
		if _, err := s.Update(t.Context(), store.Update{
			NewHash: ptr(hashOf(fmt.Sprint("expired", i))), Patch: &session.Patch{Set: map[string]string{"n": "expired"}},
			Now: base, Timeouts: short, Limits: limits,
		}); err != nil {
			t.Fatal(err)
		}
	}
	now := base.Add(5 * time.Minute)
	for _, limit := range []int{1, 5, 7, live, live + 1, 100} {
		all := listAll(t, s, limit, now, live/limit+3)
		got := map[session.Hash]string{}
		for _, e := range all {
			if e.Record.Values["n"] == "expired" {
				t.Fatalf("limit %d: List returned expired session %s", limit, e.Hash.Short())
			}
			if e.Record.Expired(now) {
				t.Fatalf("limit %d: List returned session %s with passed deadlines", limit, e.Hash.Short())
			}
			got[e.Hash] = e.Record.Values["n"]
		}
		if !maps.Equal(got, want) {
			t.Fatalf("limit %d: List returned %d sessions, want the %d live ones", limit, len(got), len(want))
		}
	}
	// Before the short sessions expire, they are listed too.
	if all := listAll(t, s, 4, base, (live+expired)/4+3); len(all) != live+expired {
		t.Fatalf("List before expiry returned %d sessions, want %d", len(all), live+expired)
	}
}

func testListEmpty(t *testing.T, s store.Store) {
	entries, next, err := s.List(t.Context(), "", 10, base)
	if err != nil {
		t.Fatalf("List of an empty store: %v", err)
	}
	if len(entries) != 0 || next != "" {
		t.Fatalf("List of an empty store: %d entries, cursor %q; want none and \"\"", len(entries), next)
	}
}

func testListOnePage(t *testing.T, s store.Store) {
	for i := range 3 {
		create(t, s, hashOf(fmt.Sprint(i)), base, map[string]string{"user": "alice"})
	}
	entries, next, err := s.List(t.Context(), "", 10, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || next != "" {
		t.Fatalf("List with room for all: %d entries, cursor %q; want 3 and \"\"", len(entries), next)
	}
	for _, e := range entries {
		got := load(t, s, e.Hash, base)
		if d := diff(e.Record, got); d != "" {
			t.Fatalf("listed record differs from the loaded one: %s", d)
		}
	}
}

func testListWhileChanging(t *testing.T, s store.Store) {
	const n = 10
	for i := range n {
		create(t, s, hashOf(fmt.Sprint(i)), base, map[string]string{"n": fmt.Sprint(i)})
	}
	entries, cursor, err := s.List(t.Context(), "", 4, base)
	if err != nil || len(entries) != 4 || cursor == "" {
		t.Fatalf("first page: %d entries, cursor %q, %v; want 4 and a cursor", len(entries), cursor, err)
	}
	seen := map[session.Hash]bool{}
	for _, e := range entries {
		seen[e.Hash] = true
	}
	// The session the cursor points at goes away between pages, and a new
	// one comes: the listing goes on from where it was.
	if err := s.Delete(t.Context(), entries[3].Hash); err != nil {
		t.Fatal(err)
	}
	create(t, s, hashOf("new"), base, map[string]string{"n": "new"})
	for pages := 0; cursor != ""; pages++ {
		if pages > n {
			t.Fatal("List did not end")
		}
		entries, cursor, err = s.List(t.Context(), cursor, 4, base)
		if err != nil {
			t.Fatalf("List after the cursor's session was deleted: %v", err)
		}
		for _, e := range entries {
			if seen[e.Hash] {
				t.Fatalf("List returned session %s twice", e.Hash.Short())
			}
			seen[e.Hash] = true
		}
	}
	// Every session that lived throughout was listed.
	for i := range n {
		if h := hashOf(fmt.Sprint(i)); !seen[h] {
			t.Fatalf("List missed session %d", i)
		}
	}
}

func testCount(t *testing.T, s store.Store) {
	wantCount(t, s, base, 0)
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
	for i := range 3 {
		create(t, s, hashOf(fmt.Sprint("live", i)), base, map[string]string{"n": "1"})
	}
	for i := range 2 {
		if _, err := s.Update(t.Context(), store.Update{
			NewHash: ptr(hashOf(fmt.Sprint("short", i))), Patch: &session.Patch{Set: map[string]string{"n": "1"}},
			Now: base, Timeouts: short, Limits: limits,
		}); err != nil {
			t.Fatal(err)
		}
	}
	wantCount(t, s, base, 5)
	wantCount(t, s, base.Add(time.Minute), 3)
	wantCount(t, s, base.Add(30*time.Minute), 0)
}

func testReturnsCopies(t *testing.T, s store.Store) {
	h := hashOf("a")
	patch := &session.Patch{Set: map[string]string{"user": "alice", "cart": "3"}}
	rec, err := record(s.Update(t.Context(), store.Update{
		NewHash: ptr(h), Patch: patch, Identity: identity, Now: base, Timeouts: timeouts, Limits: limits,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := rec.Clone()
	scribble := func(r *session.Record) {
		r.Values["user"] = "mallory"
		r.Values["admin"] = "true"
		delete(r.Values, "cart")
		r.LastSeen = r.LastSeen.Add(time.Hour)
		r.AbsoluteDeadline = r.AbsoluteDeadline.Add(100 * time.Hour)
	}
	check := func(what string) {
		t.Helper()
		if d := diff(load(t, s, h, base), want); d != "" {
			t.Fatalf("changing %s changed the store: %s", what, d)
		}
	}
	scribble(rec)
	check("the record Update returned")
	patch.Set["user"] = "mallory"
	check("the patch after Update")
	scribble(load(t, s, h, base))
	check("a loaded record")
	entries, _, err := s.List(t.Context(), "", 10, base)
	if err != nil || len(entries) != 1 {
		t.Fatalf("List: %d entries, %v", len(entries), err)
	}
	scribble(entries[0].Record)
	check("a listed record")
	scribble(mustUpdate(t, s, h, base, nil))
	check("the record a touch returned")
}

// opened opens a store for one test and closes it when the test ends,
// failing the test if Close does.
func opened(t *testing.T, open func(t *testing.T) store.Store) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}
