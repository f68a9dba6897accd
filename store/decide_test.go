package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

var (
	t0       = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	now      = t0.Add(10 * time.Minute)
	timeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	limits   = session.Limits{Keys: 3, SessionSize: 64}

	hashA, hashB, hashC = session.HashID("a"), session.HashID("b"), session.HashID("c")
)

const realm = "shop"

func ptr(h session.Hash) *session.Hash { return &h }

// live is a session created at t0 and touched then, of realm, holding kv
// ("k=v" pairs).
func live(realm string, kv ...string) *session.Record {
	rec := timeouts.NewRecord(t0)
	rec.Realm = realm
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		rec.Values[k] = v
	}
	return rec
}

// fwd is a forward record of realm to next, ending at end.
func fwd(realm string, next session.Hash, end time.Time) *session.Record {
	return &session.Record{Created: t0, LastSeen: t0, IdleDeadline: end, AbsoluteDeadline: end,
		Values: map[string]string{}, Realm: realm, Successor: &next}
}

// upd is an update of the session under hashA at now, in realm, indexed by
// "user", by a request that saw user seen.
func upd(seen string, patch *session.Patch) Update {
	return Update{Hash: hashA, HasHash: true, Patch: patch, Identity: "user", Seen: seen, Realm: realm,
		Now: now, Timeouts: timeouts, Limits: limits}
}

func with(u Update, change func(*Update)) Update { change(&u); return u }

func set(kv ...string) *session.Patch {
	p := &session.Patch{Set: map[string]string{}}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		p.Set[k] = v
	}
	return p
}

// want is the expected outcome. Times of the written record are checked
// as Created (createdAt), and LastSeen at now unless seenAt says otherwise.
type want struct {
	err  error  // errors.Is
	rule string // a *session.RuleError's reason

	next    *session.Hash
	remove  bool
	forward *session.Hash // the forward record's successor
	fwdEnd  time.Time

	write     map[string]string // nil: no write
	writeAt   session.Hash
	createdAt time.Time
	identity  string
	inPlace   bool
	set, del  []string
	// seenAt is the written record's LastSeen, and its idle deadline
	// follows from it: the stored one's, for an update that does not
	// touch. Zero: Now.
	seenAt time.Time
	// stands are the values of Result.Record, at At, for an outcome that
	// writes nothing but returns the session as it stands.
	stands map[string]string

	followed bool
}

// untouched is an update that does not touch.
func untouched(u Update) Update { u.NoTouch = true; return u }

func TestDecide(t *testing.T) {
	renew := &session.Patch{Renew: true}
	destroy := &session.Patch{Destroy: true}
	tests := []struct {
		name   string
		u      Update
		at     session.Hash
		stored *session.Record
		hop    int
		want   want
	}{
		// A new session: nothing presented.
		{"created", Update{NewHash: ptr(hashC), Patch: set("user=alice"), Identity: "user", Realm: realm, Now: now, Timeouts: timeouts, Limits: limits},
			hashA, nil, 0,
			want{write: map[string]string{"user": "alice"}, writeAt: hashC, createdAt: now, identity: "user"}},
		{"created without NewHash", Update{Patch: set("user=alice"), Realm: realm, Now: now, Timeouts: timeouts, Limits: limits},
			hashA, nil, 0, want{err: ErrNeedsNewHash}},
		{"created with nothing to set", Update{NewHash: ptr(hashC), Patch: renew, Realm: realm, Now: now, Timeouts: timeouts, Limits: limits},
			hashA, nil, 0, want{}},
		{"created over the limits", Update{NewHash: ptr(hashC), Patch: set("a=1", "b=2", "c=3", "d=4"), Realm: realm, Now: now, Timeouts: timeouts, Limits: limits},
			hashA, nil, 0, want{rule: "too_many_keys"}},
		{"created unindexed", Update{NewHash: ptr(hashC), Patch: set("cart=3"), Identity: "user", Realm: realm, Now: now, Timeouts: timeouts, Limits: limits},
			hashA, nil, 0,
			want{write: map[string]string{"cart": "3"}, writeAt: hashC, createdAt: now}},

		// The presented session is missing, expired or not of the realm:
		// nothing is written but the removal of an expired record, whatever
		// the patch.
		{"missing, touch", upd("", nil), hashA, nil, 0, want{err: ErrNotFound}},
		{"missing, sets with NewHash", with(upd("", set("user=bob")), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, nil, 0, want{err: ErrNotFound}},
		{"missing, destroy", upd("", destroy), hashA, nil, 0, want{err: ErrNotFound}},
		{"missing, destroy and sets", with(upd("", &session.Patch{Destroy: true, Set: map[string]string{"user": "bob"}}), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, nil, 0, want{err: ErrNotFound}},
		{"expired, removed", with(upd("alice", set("cart=4")), func(u *Update) { u.Now = t0.Add(30 * time.Minute) }),
			hashA, live(realm, "user=alice"), 0, want{err: ErrNotFound, remove: true}},
		{"expired by shorter timeouts, removed", with(upd("alice", nil), func(u *Update) { u.Timeouts.Idle = 5 * time.Minute }),
			hashA, live(realm, "user=alice"), 0, want{err: ErrNotFound, remove: true}},
		{"expired, sets with NewHash", with(upd("alice", set("user=bob")), func(u *Update) { u.Now = t0.Add(time.Hour); u.NewHash = ptr(hashC) }),
			hashA, live(realm, "user=alice"), 0, want{err: ErrNotFound, remove: true}},
		{"other realm", upd("alice", set("cart=4")), hashA, live("admin", "user=alice"), 0, want{err: ErrNotFound}},
		{"other realm, destroy", upd("alice", destroy), hashA, live("admin", "user=alice"), 0, want{err: ErrNotFound}},
		{"other realm, expired by its shorter timeouts: not removed", with(upd("alice", nil), func(u *Update) { u.Timeouts.Idle = 5 * time.Minute }),
			hashA, live("admin", "user=alice"), 0, want{err: ErrNotFound}},
		{"realm set against a record of a realm, for a handler with none", with(upd("alice", nil), func(u *Update) { u.Realm = "" }),
			hashA, live(realm, "user=alice"), 0, want{err: ErrNotFound}},

		// Patched in place.
		{"touch", upd("alice", nil), hashA, live(realm, "user=alice"), 0,
			want{write: map[string]string{"user": "alice"}, writeAt: hashA, createdAt: t0, identity: "user", inPlace: true}},
		{"sets and deletes", upd("alice", &session.Patch{Set: map[string]string{"b": "2", "a": "1"}, Delete: []string{"cart", "a", "cart"}}),
			hashA, live(realm, "user=alice", "cart=3"), 0,
			want{write: map[string]string{"user": "alice", "a": "1", "b": "2"}, writeAt: hashA, createdAt: t0, identity: "user",
				inPlace: true, set: []string{"a", "b"}, del: []string{"cart"}}},
		{"identity key deleted", upd("alice", &session.Patch{Delete: []string{"user"}}),
			hashA, live(realm, "user=alice", "cart=3"), 0,
			want{write: map[string]string{"cart": "3"}, writeAt: hashA, createdAt: t0, inPlace: true, del: []string{"user"}}},
		{"legacy record adopted", upd("alice", set("cart=4")), hashA, live("", "user=alice"), 0,
			want{write: map[string]string{"user": "alice", "cart": "4"}, writeAt: hashA, createdAt: t0, identity: "user", inPlace: true, set: []string{"cart"}}},
		{"NewHash equal to the hash", with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashA) }),
			hashA, live(realm, "user=alice"), 0,
			want{write: map[string]string{"user": "alice"}, writeAt: hashA, createdAt: t0, identity: "user", inPlace: true}},
		{"rule error", upd("alice", set("a=1", "b=2", "c=3")), hashA, live(realm, "user=alice"), 0, want{rule: "too_many_keys"}},
		{"the other spelling of a key sets that key", upd("alice", set("user_id=2")), hashA, live(realm, "user-id=1"), 0,
			want{write: map[string]string{"user-id": "2"}, writeAt: hashA, createdAt: t0, inPlace: true, set: []string{"user-id"}}},
		{"both spellings in one patch conflict", upd("alice", set("user_id=2", "user-id=3")), hashA, live(realm, "cart=1"), 0, want{rule: "conflict"}},

		// Destroyed.
		{"destroy", upd("alice", destroy), hashA, live(realm, "user=alice"), 0, want{remove: true}},
		// A delete beside a destroy has nothing left to delete: it starts
		// no session and needs no NewHash (it once made Update fail, a 503).
		{"destroy and deletes", upd("alice", &session.Patch{Destroy: true, Delete: []string{"cart"}}),
			hashA, live(realm, "user=alice", "cart=3"), 0, want{remove: true}},
		{"destroy and sets", with(upd("alice", &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}}), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, live(realm, "user=alice", "cart=3"), 0,
			want{remove: true, write: map[string]string{"flash": "bye"}, writeAt: hashC, createdAt: now}},
		{"destroy and sets without NewHash", upd("alice", &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}}),
			hashA, live(realm, "user=alice"), 0, want{err: ErrNeedsNewHash}},
		{"destroy and sets over the limits", with(upd("alice", &session.Patch{Destroy: true, Set: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}}), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, live(realm, "user=alice"), 0, want{rule: "too_many_keys"}},

		// Moved: a rotation leaves a forward record.
		{"renewed", with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, live(realm, "user=alice", "cart=3"), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: now.Add(session.ForwardTTL),
				write: map[string]string{"user": "alice", "cart": "3"}, writeAt: hashC, createdAt: t0, identity: "user"}},
		{"login", with(upd("", &session.Patch{Renew: true, Set: map[string]string{"user": "bob"}, Delete: []string{"cart"}}), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, live(realm, "cart=3"), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: now.Add(session.ForwardTTL),
				write: map[string]string{"user": "bob"}, writeAt: hashC, createdAt: t0, identity: "user"}},
		{"renewed near the absolute deadline: the forward record ends with the session",
			with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC); u.Now = t0.Add(12*time.Hour - time.Minute) }),
			hashA, func() *session.Record {
				r := live(realm, "user=alice")
				timeouts.Touch(r, t0.Add(12*time.Hour-20*time.Minute))
				return r
			}(), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: t0.Add(12 * time.Hour),
				write: map[string]string{"user": "alice"}, writeAt: hashC, createdAt: t0, identity: "user"}},
		{"legacy record renewed", with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, live("", "user=alice"), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: now.Add(session.ForwardTTL),
				write: map[string]string{"user": "alice"}, writeAt: hashC, createdAt: t0, identity: "user"}},
		{"renewal over the limits", with(upd("alice", &session.Patch{Renew: true, Set: map[string]string{"a": "1", "b": "2", "c": "3"}}), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, live(realm, "user=alice"), 0, want{rule: "too_many_keys"}},

		// A forward record under the presented hash.
		{"forward, sets: followed", upd("alice", set("cart=4")), hashA, fwd(realm, hashB, now.Add(time.Minute)), 0, want{next: ptr(hashB)}},
		{"forward, destroy: followed", upd("alice", destroy), hashA, fwd(realm, hashB, now.Add(time.Minute)), 0, want{next: ptr(hashB)}},
		{"forward, renewal: followed", with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashA, fwd(realm, hashB, now.Add(time.Minute)), 0, want{next: ptr(hashB)}},
		{"forward, touch only", upd("alice", nil), hashA, fwd(realm, hashB, now.Add(time.Minute)), 0, want{err: ErrNotFound}},
		{"forward, renew flag without NewHash", upd("alice", renew), hashA, fwd(realm, hashB, now.Add(time.Minute)), 0, want{err: ErrNotFound}},
		{"forward, expired", upd("alice", set("cart=4")), hashA, fwd(realm, hashB, now), 0, want{err: ErrNotFound, remove: true}},
		{"forward, not expired by timeouts", with(upd("alice", set("cart=4")), func(u *Update) { u.Timeouts.Idle = time.Minute }),
			hashA, fwd(realm, hashB, now.Add(time.Second)), 0, want{next: ptr(hashB)}},
		{"forward, other realm", upd("alice", set("cart=4")), hashA, fwd("admin", hashB, now.Add(time.Minute)), 0, want{err: ErrNotFound}},
		{"forward, a hop before the bound", upd("alice", set("cart=4")), hashA, fwd(realm, hashB, now.Add(time.Minute)), MaxHops - 1, want{next: ptr(hashB)}},
		{"forward, at the hop bound", upd("alice", set("cart=4")), hashA, fwd(realm, hashB, now.Add(time.Minute)), MaxHops, want{err: ErrNotFound}},

		// Not touched: the keys change, the session may move, but LastSeen
		// and the idle deadline stay as stored.
		{"no touch, touch only: nothing written", untouched(upd("alice", nil)), hashA, live(realm, "user=alice"), 0,
			want{stands: map[string]string{"user": "alice"}, seenAt: t0}},
		{"no touch, sets and deletes", untouched(upd("alice", &session.Patch{Set: map[string]string{"cart": "4"}, Delete: []string{"theme"}})),
			hashA, live(realm, "user=alice", "cart=3", "theme=dark"), 0,
			want{write: map[string]string{"user": "alice", "cart": "4"}, writeAt: hashA, createdAt: t0, identity: "user",
				inPlace: true, set: []string{"cart"}, del: []string{"theme"}, seenAt: t0}},
		{"no touch, legacy record adopted", untouched(upd("alice", set("cart=4"))), hashA, live("", "user=alice"), 0,
			want{write: map[string]string{"user": "alice", "cart": "4"}, writeAt: hashA, createdAt: t0, identity: "user", inPlace: true, set: []string{"cart"}, seenAt: t0}},
		{"no touch, renewed", untouched(with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC) })),
			hashA, live(realm, "user=alice", "cart=3"), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: now.Add(session.ForwardTTL),
				write: map[string]string{"user": "alice", "cart": "3"}, writeAt: hashC, createdAt: t0, identity: "user", seenAt: t0}},
		{"no touch, login", untouched(with(upd("", &session.Patch{Renew: true, Set: map[string]string{"user": "bob"}}), func(u *Update) { u.NewHash = ptr(hashC) })),
			hashA, live(realm, "cart=3"), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: now.Add(session.ForwardTTL),
				write: map[string]string{"user": "bob", "cart": "3"}, writeAt: hashC, createdAt: t0, identity: "user", seenAt: t0}},
		{"no touch, renewed near the idle deadline: the forward record ends with the session",
			untouched(with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC); u.Now = t0.Add(29 * time.Minute) })),
			hashA, live(realm, "user=alice"), 0,
			want{remove: true, forward: ptr(hashC), fwdEnd: t0.Add(30 * time.Minute),
				write: map[string]string{"user": "alice"}, writeAt: hashC, createdAt: t0, identity: "user", seenAt: t0}},
		{"no touch, expired", untouched(with(upd("alice", set("cart=4")), func(u *Update) { u.Now = t0.Add(30 * time.Minute) })),
			hashA, live(realm, "user=alice"), 0, want{err: ErrNotFound, remove: true}},
		{"no touch, rule error", untouched(upd("alice", set("a=1", "b=2", "c=3"))), hashA, live(realm, "user=alice"), 0, want{rule: "too_many_keys"}},
		{"no touch, created: new at now", untouched(Update{NewHash: ptr(hashC), Patch: set("user=alice"), Identity: "user", Realm: realm, Now: now, Timeouts: timeouts, Limits: limits}),
			hashA, nil, 0,
			want{write: map[string]string{"user": "alice"}, writeAt: hashC, createdAt: now, identity: "user"}},
		{"no touch, destroy and sets: new at now", untouched(with(upd("alice", &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}}), func(u *Update) { u.NewHash = ptr(hashC) })),
			hashA, live(realm, "user=alice"), 0,
			want{remove: true, write: map[string]string{"flash": "bye"}, writeAt: hashC, createdAt: now}},
		{"no touch, forward, touch only", untouched(upd("alice", nil)), hashA, fwd(realm, hashB, now.Add(time.Minute)), 0, want{err: ErrNotFound}},
		{"no touch, successor", untouched(upd("alice", set("cart=4"))), hashB, live(realm, "user=alice", "cart=3"), 1,
			want{write: map[string]string{"user": "alice", "cart": "4"}, writeAt: hashB, createdAt: t0, identity: "user",
				inPlace: true, set: []string{"cart"}, seenAt: t0, followed: true}},

		// The successor, reached through a forward record.
		{"successor, same identity", upd("alice", set("cart=4")), hashB, live(realm, "user=alice", "cart=3"), 1,
			want{write: map[string]string{"user": "alice", "cart": "4"}, writeAt: hashB, createdAt: t0, identity: "user",
				inPlace: true, set: []string{"cart"}, followed: true}},
		{"successor, anonymous as seen", upd("", set("cart=4")), hashB, live(realm, "cart=3"), 1,
			want{write: map[string]string{"cart": "4"}, writeAt: hashB, createdAt: t0, inPlace: true, set: []string{"cart"}, followed: true}},
		{"successor, no identity key configured", with(upd("", set("cart=4")), func(u *Update) { u.Identity = "" }),
			hashB, live(realm, "user=bob"), 1,
			want{write: map[string]string{"user": "bob", "cart": "4"}, writeAt: hashB, createdAt: t0, inPlace: true, set: []string{"cart"}, followed: true}},
		{"successor, another identity", upd("alice", set("cart=4")), hashB, live(realm, "user=bob"), 1, want{err: ErrStale}},
		{"successor, logged in since", upd("", set("cart=4")), hashB, live(realm, "user=bob"), 1, want{err: ErrStale}},
		{"successor, logged out since", upd("alice", set("cart=4")), hashB, live(realm, "cart=3"), 1, want{err: ErrStale}},
		{"successor, another identity, destroy", upd("alice", destroy), hashB, live(realm, "user=bob"), 1, want{err: ErrStale}},
		{"successor, destroy", upd("alice", destroy), hashB, live(realm, "user=alice"), 1, want{remove: true, followed: true}},
		{"successor, gone", upd("alice", set("cart=4")), hashB, nil, 1, want{err: ErrNotFound}},
		{"successor, expired", with(upd("alice", set("cart=4")), func(u *Update) { u.Now = t0.Add(time.Hour) }),
			hashB, live(realm, "user=alice"), 1, want{err: ErrNotFound, remove: true}},
		{"successor, other realm", upd("alice", set("cart=4")), hashB, live("admin", "user=alice"), 1, want{err: ErrNotFound}},
		{"successor, rule error", upd("alice", set("a=1", "b=2", "c=3")), hashB, live(realm, "user=alice"), 1, want{rule: "too_many_keys"}},
		{"successor, renewed again", with(upd("alice", renew), func(u *Update) { u.NewHash = ptr(hashC) }),
			hashB, live(realm, "user=alice"), 1,
			want{remove: true, forward: ptr(hashC), fwdEnd: now.Add(session.ForwardTTL),
				write: map[string]string{"user": "alice"}, writeAt: hashC, createdAt: t0, identity: "user", followed: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before *session.Record
			if tc.stored != nil {
				before = tc.stored.Clone()
			}
			o := Decide(tc.u, tc.at, tc.stored, tc.hop)
			if tc.stored != nil && !sameRecord(tc.stored, before) {
				t.Errorf("Decide changed the stored record: %+v, was %+v", tc.stored, before)
			}
			check(t, tc.u, tc.at, o, tc.want)
		})
	}
}

func sameRecord(a, b *session.Record) bool {
	return a.Created.Equal(b.Created) && a.LastSeen.Equal(b.LastSeen) && a.IdleDeadline.Equal(b.IdleDeadline) &&
		a.AbsoluteDeadline.Equal(b.AbsoluteDeadline) && maps.Equal(a.Values, b.Values) && a.Realm == b.Realm &&
		(a.Successor == nil) == (b.Successor == nil) && (a.Successor == nil || *a.Successor == *b.Successor)
}

// check compares o with w field by field.
func check(t *testing.T, u Update, at session.Hash, o Outcome, w want) {
	t.Helper()
	checkErr(t, o, w)
	if o.At != at {
		t.Errorf("At = %s, want %s", o.At.Short(), at.Short())
	}
	if !sameHash(o.Next, w.next) {
		t.Errorf("Next = %v, want %v", o.Next, w.next)
	}
	if o.Remove != w.remove {
		t.Errorf("Remove = %v, want %v", o.Remove, w.remove)
	}
	checkForward(t, u, o, w)
	checkWrite(t, u, o, w)
	if o.Writes() != (w.remove || w.forward != nil || w.write != nil) {
		t.Errorf("Writes() = %v for %+v", o.Writes(), o)
	}
	if o.Result.Followed != w.followed {
		t.Errorf("Result.Followed = %v, want %v", o.Result.Followed, w.followed)
	}
	// The session acted on is the one read, whenever the update presented
	// one and this hop decided: the presented one, or a successor.
	var acted session.Hash
	if u.HasHash && o.Err == nil && o.Next == nil {
		acted = at
	}
	if o.Result.Acted != acted {
		t.Errorf("Result.Acted = %s, want %s", o.Result.Acted.Short(), acted.Short())
	}
}

func checkErr(t *testing.T, o Outcome, w want) {
	t.Helper()
	var re *session.RuleError
	switch {
	case w.rule != "":
		if !errors.As(o.Err, &re) || re.Reason != w.rule {
			t.Errorf("Err = %v, want a RuleError %q", o.Err, w.rule)
		}
	case !errors.Is(o.Err, w.err) || (w.err == nil) != (o.Err == nil):
		t.Errorf("Err = %v, want %v", o.Err, w.err)
	}
	if r := o.Result; o.Err != nil && (r.Record != nil || r.Hash != (session.Hash{}) || r.Acted != (session.Hash{}) || r.Followed || r.Flash != nil) {
		t.Errorf("Result = %+v with error %v, want none", o.Result, o.Err)
	}
	if o.Err != nil && (o.Write != nil || o.Forward != nil || o.Next != nil) {
		t.Errorf("an outcome with error %v writes or follows: %+v", o.Err, o)
	}
}

func checkForward(t *testing.T, u Update, o Outcome, w want) {
	t.Helper()
	if w.forward == nil {
		if o.Forward != nil {
			t.Errorf("Forward = %+v, want none", o.Forward)
		}
		return
	}
	f := o.Forward
	switch {
	case f == nil:
		t.Fatalf("no forward record, want one to %s", w.forward.Short())
	case !f.Forwarded() || *f.Successor != *w.forward:
		t.Errorf("forward record to %v, want %s", f.Successor, w.forward.Short())
	case !f.ExpiresAt().Equal(w.fwdEnd) || !f.IdleDeadline.Equal(f.AbsoluteDeadline):
		t.Errorf("forward record ends at %s / %s, want %s", f.IdleDeadline.Sub(t0), f.AbsoluteDeadline.Sub(t0), w.fwdEnd.Sub(t0))
	case len(f.Values) != 0 || f.Values == nil:
		t.Errorf("forward record holds %#v, want an empty map", f.Values)
	case f.Realm != u.Realm:
		t.Errorf("forward record of realm %q, want %q", f.Realm, u.Realm)
	}
}

func checkWrite(t *testing.T, u Update, o Outcome, w want) {
	t.Helper()
	seen := w.seenAt
	if seen.IsZero() {
		seen = u.Now
	}
	if w.write == nil {
		checkStands(t, o, w, seen)
		return
	}
	r := o.Write
	switch {
	case r == nil:
		t.Fatalf("no record written, want %v", w.write)
	case !maps.Equal(r.Values, w.write):
		t.Errorf("written values = %v, want %v", r.Values, w.write)
	case o.WriteAt != w.writeAt:
		t.Errorf("written at %s, want %s", o.WriteAt.Short(), w.writeAt.Short())
	case !r.Created.Equal(w.createdAt) || !r.LastSeen.Equal(seen) || !r.IdleDeadline.Equal(earlier(seen.Add(u.Timeouts.Idle), r.AbsoluteDeadline)):
		t.Errorf("written record created %s, seen %s, idle until %s; want created %s and touched at %s",
			r.Created.Sub(t0), r.LastSeen.Sub(t0), r.IdleDeadline.Sub(t0), w.createdAt.Sub(t0), seen.Sub(t0))
	case r.Realm != u.Realm:
		t.Errorf("written record of realm %q, want it stamped %q", r.Realm, u.Realm)
	case r.Forwarded():
		t.Errorf("written record is a forward record")
	case o.Identity != w.identity:
		t.Errorf("Identity = %q, want %q", o.Identity, w.identity)
	case o.InPlace != w.inPlace:
		t.Errorf("InPlace = %v, want %v", o.InPlace, w.inPlace)
	case !slices.Equal(o.Set, w.set) || !slices.Equal(o.Del, w.del):
		t.Errorf("Set, Del = %q, %q; want %q, %q", o.Set, o.Del, w.set, w.del)
	case o.Result.Record != r || o.Result.Hash != o.WriteAt:
		t.Errorf("Result = %+v, want the written record at %s", o.Result, o.WriteAt.Short())
	}
}

// checkStands checks an outcome that writes no record: it returns none,
// or, if w.stands, the session as it stands under At, last seen at seen.
func checkStands(t *testing.T, o Outcome, w want, seen time.Time) {
	t.Helper()
	r := o.Result.Record
	switch {
	case o.Write != nil:
		t.Errorf("Write = %+v, want none", o.Write)
	case w.stands == nil:
		if r != nil {
			t.Errorf("Result.Record = %+v, want none", r)
		}
	case r == nil:
		t.Errorf("Result.Record = nil, want the session as it stands, %v", w.stands)
	case !maps.Equal(r.Values, w.stands) || o.Result.Hash != o.At:
		t.Errorf("Result = %v at %s, want %v at %s", r.Values, o.Result.Hash.Short(), w.stands, o.At.Short())
	case !r.LastSeen.Equal(seen):
		t.Errorf("Result.Record last seen at %s, want %s", r.LastSeen.Sub(t0), seen.Sub(t0))
	}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sameHash(a, b *session.Hash) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// memStore executes outcomes on a map, as a store does in a transaction:
// the loop of reading and deciding that bolt and Redis run.
type memStore map[session.Hash]*session.Record

func (m memStore) update(u Update) (Result, error) {
	at := u.Hash
	for hop := 0; ; hop++ {
		var stored *session.Record
		if u.HasHash {
			stored = m[at]
		}
		o := Decide(u, at, stored, hop)
		if o.Next != nil {
			at = *o.Next
			continue
		}
		if o.Remove {
			delete(m, o.At)
		}
		if o.Forward != nil {
			m[o.At] = o.Forward
		}
		if o.Write != nil {
			m[o.WriteAt] = o.Write.Clone()
		}
		return o.Result, o.Err
	}
}

func (m memStore) String() string {
	var s []string
	for h, r := range m {
		if r.Forwarded() {
			s = append(s, fmt.Sprintf("%s→%s", h.Short(), r.Successor.Short()))
		} else {
			s = append(s, fmt.Sprintf("%s%v", h.Short(), r.Values))
		}
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// chainHashes are the IDs of the chains of TestDecideChain*.
var chainHashes = []session.Hash{hashA, hashB, hashC, session.HashID("d"), session.HashID("e"), session.HashID("f")}

// chain runs sequences of updates through memStore: a session created
// under chainHashes[0] and rotated n times, leaving a chain of n forward
// records chainHashes[0] → … → chainHashes[n], made within
// session.ForwardTTL of now.
func chain(t *testing.T, n int) memStore {
	t.Helper()
	m := memStore{}
	if _, err := m.update(Update{NewHash: ptr(chainHashes[0]), Patch: set("user=alice"), Identity: "user", Realm: realm,
		Now: t0, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		u := upd("alice", &session.Patch{Renew: true})
		u.Hash, u.NewHash, u.Now = chainHashes[i], ptr(chainHashes[i+1]), now.Add(time.Duration(i-n)*time.Second)
		res, err := m.update(u)
		if err != nil || res.Hash != chainHashes[i+1] || res.Followed {
			t.Fatalf("rotation %d: %+v, %v", i, res, err)
		}
	}
	return m
}

func TestDecideChainWithinBound(t *testing.T) {
	m := chain(t, MaxHops)
	res, err := m.update(upd("alice", set("cart=4")))
	if err != nil || !res.Followed || res.Hash != chainHashes[MaxHops] || res.Record.Values["cart"] != "4" {
		t.Fatalf("update through %d forward records: %+v, %v; want it followed to the session", MaxHops, res, err)
	}
	if got := m[chainHashes[MaxHops]].Values["cart"]; got != "4" {
		t.Fatalf("the session holds cart=%q: %v", got, m)
	}
}

func TestDecideChainPastBound(t *testing.T) {
	m := chain(t, MaxHops+1)
	before := m.String()
	if res, err := m.update(upd("alice", set("cart=4"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update through %d forward records: %+v, %v; want ErrNotFound", MaxHops+1, res, err)
	}
	if m.String() != before {
		t.Fatalf("a refused update changed the store:\n%s\nwas\n%s", m, before)
	}
}

func TestDecideChainRenewalExtends(t *testing.T) {
	m := chain(t, 1) // a → b
	u := upd("alice", &session.Patch{Renew: true})
	u.NewHash = ptr(hashC)
	res, err := m.update(u)
	if err != nil || !res.Followed || res.Hash != hashC || res.Acted != hashB {
		t.Fatalf("renewal through a → b: %+v, %v; want it followed and b moved to c", res, err)
	}
	if !m[hashA].Forwarded() || *m[hashA].Successor != hashB || !m[hashB].Forwarded() || *m[hashB].Successor != hashC {
		t.Fatalf("want a → b → c, got %v", m)
	}
	if res, err := m.update(upd("alice", set("cart=1"))); err != nil || res.Hash != hashC {
		t.Fatalf("update through a → b → c: %+v, %v", res, err)
	}
}

func TestDecideChainTouchWritesNothing(t *testing.T) {
	m := chain(t, 1)
	before := m[hashB].Clone()
	if _, err := m.update(upd("alice", nil)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("touch through a forward record: %v, want ErrNotFound", err)
	}
	if !sameRecord(m[hashB], before) {
		t.Fatalf("the touch changed the successor: %+v, was %+v", m[hashB], before)
	}
}

func TestDecideChainDestroyEndsSuccessor(t *testing.T) {
	m := chain(t, 2)
	res, err := m.update(upd("alice", &session.Patch{Destroy: true}))
	if err != nil || res.Record != nil || !res.Followed || res.Acted != hashC {
		t.Fatalf("destroy through a → b → c: %+v, %v; want c ended", res, err)
	}
	if _, ok := m[hashC]; ok {
		t.Fatalf("the successor lives on: %v", m)
	}
	if _, err := m.update(upd("alice", set("cart=1"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update through a chain to a destroyed session: %v, want ErrNotFound", err)
	}
}

func TestDecideChainStaleAfterLogin(t *testing.T) {
	m := chain(t, 0)
	u := upd("alice", &session.Patch{Renew: true, Set: map[string]string{"user": "bob"}})
	u.NewHash = ptr(hashB)
	if _, err := m.update(u); err != nil {
		t.Fatal(err)
	}
	before := m.String()
	if _, err := m.update(upd("alice", set("cart=1"))); !errors.Is(err, ErrStale) {
		t.Fatalf("update of alice's request after bob logged in: %v, want ErrStale", err)
	}
	if m.String() != before {
		t.Fatalf("a stale update changed the store:\n%s\nwas\n%s", m, before)
	}
}
