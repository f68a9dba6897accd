package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// Moving sessions between two real bolt stores: store.Fallback and
// store.CopyPage.

var (
	base     = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	timeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
)

func openBolt(t *testing.T, name string) store.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), name), bolt.Options{SweepInterval: -1, NoSync: true, TouchDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// login starts a session of user in s at now.
func login(t *testing.T, s store.Store, id, user string, now time.Time) session.Hash {
	t.Helper()
	h := session.HashID(id)
	_, err := s.Update(t.Context(), store.Update{
		NewHash: &h, Patch: &session.Patch{Set: map[string]string{"user": user}},
		Identity: "user", Realm: "shop", Now: now, Timeouts: timeouts, Limits: session.DefaultLimits(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// in is an update of the session under h, which the request saw as user's.
func in(h session.Hash, user string, now time.Time, p *session.Patch) store.Update {
	return store.Update{Hash: h, HasHash: true, Patch: p, Identity: "user", Seen: user, Realm: "shop",
		Now: now, Timeouts: timeouts, Limits: session.DefaultLimits()}
}

func has(t *testing.T, s store.Store, h session.Hash, now time.Time) *session.Record {
	t.Helper()
	rec, err := s.Load(t.Context(), h, now, timeouts)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestFallbackCopiesOnFirstUse: a session of the old store is read, and
// copied into the new one with its deadlines and index, on first use.
func TestFallbackCopiesOnFirstUse(t *testing.T) {
	oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
	f := &store.Fallback{New: newS, Old: oldS, Identity: "user"}
	h := login(t, oldS, "alice-id", "alice", base)
	want := has(t, oldS, h, base)

	now := base.Add(time.Second) // within touch_interval: no touch
	got := has(t, f, h, now)
	if got == nil || got.Values["user"] != "alice" {
		t.Fatalf("Load through the fallback: %+v", got)
	}
	copied := has(t, newS, h, now)
	if copied == nil || !store.SameRecord(copied, want) {
		t.Fatalf("the new store holds %+v, want %+v", copied, want)
	}
	if list, err := newS.ListByIdentity(t.Context(), "shop", "user", "alice", now); err != nil || len(list) != 1 {
		t.Fatalf("the new store's index of alice: %v, %v", list, err)
	}
	// A write goes to the new store only.
	if _, err := f.Update(t.Context(), in(h, "alice", now, &session.Patch{Set: map[string]string{"cart": "apple"}})); err != nil {
		t.Fatal(err)
	}
	if has(t, newS, h, now).Values["cart"] != "apple" || has(t, oldS, h, now).Values["cart"] != "" {
		t.Fatal("the write did not go to the new store alone")
	}
}

// TestFallbackEndsInBothStores: whatever ends a session, or moves it to
// another ID, leaves it in neither store, so that it never comes back
// from the old one, even after the forward record of a rotation expires.
func TestFallbackEndsInBothStores(t *testing.T) {
	cases := []struct {
		name string
		end  func(t *testing.T, f *store.Fallback, h session.Hash, now time.Time)
	}{
		{"a logout", func(t *testing.T, f *store.Fallback, h session.Hash, now time.Time) {
			if _, err := f.Update(t.Context(), in(h, "alice", now, &session.Patch{Destroy: true})); err != nil {
				t.Fatal(err)
			}
		}},
		{"a rotation", func(t *testing.T, f *store.Fallback, h session.Hash, now time.Time) {
			u := in(h, "alice", now, &session.Patch{Renew: true})
			next := session.HashID("next")
			u.NewHash = &next
			if _, err := f.Update(t.Context(), u); err != nil {
				t.Fatal(err)
			}
		}},
		{"a revocation", func(t *testing.T, f *store.Fallback, h session.Hash, now time.Time) {
			if err := f.Delete(t.Context(), h); err != nil {
				t.Fatal(err)
			}
		}},
		{"a logout everywhere", func(t *testing.T, f *store.Fallback, h session.Hash, now time.Time) {
			if n, err := f.DeleteByIdentity(t.Context(), "shop", "user", "alice"); err != nil || n != 1 {
				t.Fatalf("ended %d, %v", n, err)
			}
		}},
	}
	for _, copiedFirst := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name + ", never used"
			if copiedFirst {
				name = tc.name + ", after a first use"
			}
			t.Run(name, func(t *testing.T) {
				oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
				f := &store.Fallback{New: newS, Old: oldS, Identity: "user"}
				h := login(t, oldS, "alice-id", "alice", base)
				now := base.Add(time.Second)
				if copiedFirst {
					has(t, f, h, now)
				}
				tc.end(t, f, h, now)
				later := now.Add(session.ForwardTTL + time.Second)
				if has(t, oldS, h, later) != nil || has(t, f, h, later) != nil {
					t.Fatal("the ended session is still found")
				}
			})
		}
	}
}

// pausing runs before the first Load after it is armed: the moment
// between a copy's import and its check of the old store.
type pausing struct {
	store.Store
	armed  bool
	before func()
}

func (p *pausing) Load(ctx context.Context, h session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	if p.armed {
		p.armed = false
		p.before()
	}
	return p.Store.Load(ctx, h, now, t)
}

// TestCopyPageRaces ends a session at each step of its copy: before the
// page is read, between the import and the check, and after; it is in
// neither store afterwards.
func TestCopyPageRaces(t *testing.T) {
	oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
	src := &pausing{Store: oldS}
	f := &store.Fallback{New: newS, Old: src, Identity: "user"}
	h := login(t, oldS, "alice-id", "alice", base)
	bob := login(t, oldS, "bob-id", "bob", base)
	now := base.Add(time.Second)

	// alice logs out between the import of her copy and its check.
	src.armed = true
	src.before = func() {
		if err := f.Delete(t.Context(), h); err != nil {
			t.Fatalf("the logout during the copy: %v", err)
		}
	}
	stats, next, err := store.CopyPage(t.Context(), src, newS, "", 10, now)
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	if stats.Ended != 1 || stats.Copied != 1 {
		t.Fatalf("stats %+v, want alice ended and bob copied", stats)
	}
	if has(t, newS, h, now) != nil || has(t, f, h, now) != nil {
		t.Fatal("alice's session came back")
	}

	// Again: nothing copied twice; bob's session, written since, is newer.
	if _, err := f.Update(t.Context(), in(bob, "bob", now, &session.Patch{Set: map[string]string{"cart": "pear"}})); err != nil {
		t.Fatal(err)
	}
	stats, _, err = store.CopyPage(t.Context(), oldS, newS, "", 10, now)
	if err != nil || stats != (store.CopyStats{Newer: 1}) {
		t.Fatalf("a second pass: %+v, %v", stats, err)
	}
	if has(t, newS, bob, now).Values["cart"] != "pear" {
		t.Fatal("the second pass wrote over bob's newer session")
	}
}

// TestMoveSealed moves a sealed session, on first use and by a migration:
// it arrives as it was stored, sealed, still opened by its ID alone, and
// found by the keyed hash of its user.
func TestMoveSealed(t *testing.T) {
	index, err := session.NewIndexKey([]byte("an index secret of the test, long enough"))
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"first use", "migration"} {
		t.Run(how, func(t *testing.T) {
			oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
			id := "alice-id"
			h := session.HashID(id)
			key := session.DeriveSealKey(id)
			_, err := oldS.Update(t.Context(), store.Update{
				NewHash: &h, Patch: &session.Patch{Set: map[string]string{"user": "alice", "cart": "apple"}},
				Identity: "user", Realm: "shop", Now: base, Timeouts: timeouts, Limits: session.DefaultLimits(),
				Seal: &store.Sealing{NewKey: key, Index: index},
			})
			if err != nil {
				t.Fatal(err)
			}
			now := base.Add(time.Second)
			if how == "first use" {
				has(t, &store.Fallback{New: newS, Old: oldS, Identity: "user"}, h, now)
			} else if stats, _, err := store.CopyPage(t.Context(), oldS, newS, "", 10, now); err != nil || stats.Copied != 1 {
				t.Fatalf("migration: %+v, %v", stats, err)
			}
			moved := has(t, newS, h, now)
			if moved == nil || !moved.Sealed || moved.Values["user"] == "alice" {
				t.Fatalf("the moved record: %+v, want it sealed", moved)
			}
			if err := key.Open(h, moved); err != nil || moved.Values["user"] != "alice" || moved.Values["cart"] != "apple" {
				t.Fatalf("opening the moved record: %v, %v", moved.Values, err)
			}
			list, err := newS.ListByIdentity(t.Context(), "shop", "user", index.Tag("user", "alice"), now)
			if err != nil || len(list) != 1 || list[0].Hash != h {
				t.Fatalf("the new store's index by the keyed hash: %v, %v", list, err)
			}
		})
	}
}

// TestFallbackCopiesOnlyWhileTheMoveIsOn: Copying refuses once the move
// is over: Load and Update find nothing and copy nothing, so a request in
// flight from before cannot bring back a session New has ended since.
// While it is on, the copy is made with it held.
func TestFallbackCopiesOnlyWhileTheMoveIsOn(t *testing.T) {
	for _, on := range []bool{false, true} {
		oldS, newS := openBolt(t, "old.db"), openBolt(t, "new.db")
		h := login(t, oldS, "id", "alice", base)
		held, released := false, false
		f := &store.Fallback{New: newS, Old: oldS, Identity: "user", Copying: func() (func(), bool) {
			if !on {
				return nil, false
			}
			held = true
			return func() { released = true }, true
		}}
		_, err := f.Update(t.Context(), in(h, "alice", base.Add(time.Minute), &session.Patch{Set: map[string]string{"cart": "apple"}}))
		if on {
			if err != nil || !held || !released {
				t.Fatalf("on: update = %v, held %v, released %v; want a copy made while held", err, held, released)
			}
			if rec := has(t, newS, h, base.Add(time.Minute)); rec == nil || rec.Values["cart"] != "apple" {
				t.Fatalf("on: new store holds %+v, want the copy with the write", rec)
			}
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("off: update = %v, want ErrNotFound", err)
		}
		if rec := has(t, newS, h, base.Add(time.Minute)); rec != nil {
			t.Fatalf("off: new store holds %+v, want no copy", rec)
		}
	}
}
