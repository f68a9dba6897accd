package storetest

import (
	"context"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Pause installs hook in s, a store that open returned, before any Update
// runs: s calls it in every Update that writes, after store.Decide and
// before the writes it decided, on the Update's goroutine, and in
// DeleteByIdentity before it deletes each session it found, on its
// caller's (a store may call it before other writes too). It reports
// whether another Update of the same session can run to its end while one
// is stopped there: true for a store that reads, then writes only if the
// session is still as it read it (Redis), false for one whose read and
// write are one transaction that keeps the other writers out (bolt).
type Pause func(s store.Store, hook func()) (interleaves bool)

// Flash runs the tests of flash values against the stores that open
// returns, fresh and empty each time as for Run: every store keeps them
// through the writes that keep the session, and takes them exactly once,
// each take and each restore one atomic step. pause stops an Update
// between its read and its write, so that two of them are interleaved
// step by step.
func Flash(t *testing.T, open func(t *testing.T) store.Store, pause Pause) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store, pause Pause)
	}{
		{"Set", testFlashSet},
		{"Take", testFlashTake},
		{"TakeKeepsTheRest", testFlashTakeKeepsTheRest},
		{"Restore", testFlashRestore},
		{"Rotation", testFlashRotation},
		{"Limits", testFlashLimits},
		{"DestroyAndSet", testFlashDestroyAndSet},
		{"TakeInterleaved", testFlashTakeInterleaved},
		{"RestoreInterleaved", testFlashRestoreInterleaved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := opened(t, open)
			tc.run(t, s, pause)
		})
	}
}

// flash sets flash values of the session under hash at now, as a response
// of alice's does.
func flash(t *testing.T, s store.Store, hash session.Hash, now time.Time, values map[string]string) store.Result {
	t.Helper()
	res, err := s.Update(t.Context(), in(shop, hash, "alice", now, &session.Patch{Flash: maps.Clone(values)}))
	if err != nil || res.Record == nil {
		t.Fatalf("setting flash values %v: %+v, %v", values, res, err)
	}
	return res
}

// taking is the update of a request that takes the flash values of the
// session under hash at now, as the handler makes it: it does not touch.
func taking(hash session.Hash, now time.Time) store.Update {
	u := untouched(shop, hash, "alice", now, nil)
	u.TakeFlash = true
	return u
}

// restoring is the update that puts back flash values a request took.
func restoring(hash session.Hash, now time.Time, values map[string]string) store.Update {
	u := untouched(shop, hash, "alice", now, nil)
	u.RestoreFlash = maps.Clone(values)
	return u
}

// wantFlash checks the flash values of the session under hash at now.
func wantFlash(t *testing.T, s store.Store, what string, hash session.Hash, now time.Time, want map[string]string) {
	t.Helper()
	got := load(t, s, hash, now)
	if !maps.Equal(got.Flash, want) || want == nil && got.Flash != nil {
		t.Fatalf("%s: the session holds flash values %#v, want %#v", what, got.Flash, want)
	}
}

// testFlashSet: flash values are stored with the session, apart from its
// keys; one set again replaces the one of its key, in either spelling.
func testFlashSet(t *testing.T, s store.Store, _ Pause) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice", "notice": "a key"})
	res := flash(t, s, h, base.Add(time.Minute), map[string]string{"notice": "Saved", "cart_items": "3"})
	if !maps.Equal(res.Record.Flash, map[string]string{"notice": "Saved", "cart_items": "3"}) || res.Flash != nil {
		t.Fatalf("Update returned flash values %v and took %v", res.Record.Flash, res.Flash)
	}
	wantFlash(t, s, "after a set", h, base.Add(time.Minute), map[string]string{"notice": "Saved", "cart_items": "3"})
	flash(t, s, h, base.Add(2*time.Minute), map[string]string{"notice": "Saved again", "cart-items": "4"})
	wantFlash(t, s, "after a second set", h, base.Add(2*time.Minute), map[string]string{"notice": "Saved again", "cart-items": "4"})
	got := load(t, s, h, base.Add(2*time.Minute))
	if !maps.Equal(got.Values, map[string]string{"user": "alice", "notice": "a key"}) {
		t.Fatalf("the keys became %v", got.Values)
	}
	// A session with flash values only, set on a request without one.
	only := hashOf("only")
	res, err := s.Update(t.Context(), store.Update{NewHash: ptr(only), Patch: &session.Patch{Flash: map[string]string{"notice": "Bye"}},
		Identity: identity, Realm: shop, Now: base, Timeouts: timeouts, Limits: limits})
	if err != nil || res.Hash != only {
		t.Fatalf("a session started by a flash value: %+v, %v", res, err)
	}
	wantFlash(t, s, "a session started by a flash value", only, base, map[string]string{"notice": "Bye"})
	wantCount(t, s, base.Add(2*time.Minute), 2)
}

// testFlashTake: a take returns the values and leaves none; the next take
// gets none and writes nothing.
func testFlashTake(t *testing.T, s store.Store, _ Pause) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	flash(t, s, h, base, map[string]string{"notice": "Saved", "n": ""})
	res, err := s.Update(t.Context(), taking(h, base.Add(time.Minute)))
	if err != nil || !maps.Equal(res.Flash, map[string]string{"notice": "Saved", "n": ""}) || res.Hash != h || res.Record == nil {
		t.Fatalf("take: %+v, %v", res, err)
	}
	if res.Record.Flash != nil {
		t.Fatalf("the record a take returned holds %v", res.Record.Flash)
	}
	wantFlash(t, s, "after the take", h, base.Add(time.Minute), nil)
	before := load(t, s, h, base.Add(time.Minute))
	res, err = s.Update(t.Context(), taking(h, base.Add(2*time.Minute)))
	if err != nil || res.Flash != nil || res.Record == nil {
		t.Fatalf("a second take: %+v, %v; want none taken and the session", res, err)
	}
	wantSame(t, s, "a take that finds nothing", h, base.Add(2*time.Minute), before)
	// A take of a session that is gone finds nothing either.
	if _, err := s.Update(t.Context(), taking(hashOf("gone"), base)); err == nil {
		t.Fatal("a take of a session that does not exist succeeded")
	}
}

// testFlashTakeKeepsTheRest: a take does not touch the session, nor
// change its keys, its other metadata or its place in the indexes.
func testFlashTakeKeepsTheRest(t *testing.T, s store.Store, _ Pause) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice", "cart": "3"})
	before := flash(t, s, h, base, map[string]string{"notice": "Saved"}).Record
	if _, err := s.Update(t.Context(), taking(h, base.Add(10*time.Minute))); err != nil {
		t.Fatal(err)
	}
	got := load(t, s, h, base.Add(10*time.Minute))
	if d := diff(got, before); d != "" || got.Realm != shop {
		t.Fatalf("the take changed the session: %s (realm %q)", d, got.Realm)
	}
	wantListed(t, s, shop, identity, "alice", base.Add(10*time.Minute), h)
	wantCount(t, s, base.Add(10*time.Minute), 1)
	wantGone(t, s, h, base.Add(30*time.Minute)) // the idle deadline of the set, not of the take
}

// testFlashRestore: a restore puts back what a take took, except the
// values set again since, in either spelling; then a take gets them.
func testFlashRestore(t *testing.T, s store.Store, _ Pause) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	flash(t, s, h, base, map[string]string{"notice": "Saved", "a_b": "1", "n": "1"})
	res, err := s.Update(t.Context(), taking(h, base.Add(time.Minute)))
	if err != nil || len(res.Flash) != 3 {
		t.Fatalf("take: %+v, %v", res, err)
	}
	flash(t, s, h, base.Add(2*time.Minute), map[string]string{"n": "2", "a-b": "2"})
	back, err := s.Update(t.Context(), restoring(h, base.Add(3*time.Minute), res.Flash))
	if err != nil || back.Record == nil || back.Flash != nil {
		t.Fatalf("restore: %+v, %v", back, err)
	}
	want := map[string]string{"notice": "Saved", "a-b": "2", "n": "2"}
	wantFlash(t, s, "after the restore", h, base.Add(3*time.Minute), want)
	before := load(t, s, h, base.Add(3*time.Minute))
	if _, err := s.Update(t.Context(), restoring(h, base.Add(4*time.Minute), res.Flash)); err != nil {
		t.Fatal(err)
	}
	wantSame(t, s, "a restore with nothing to put back", h, base.Add(4*time.Minute), before)
	wantFlash(t, s, "after a second restore", h, base.Add(4*time.Minute), want)
	res, err = s.Update(t.Context(), taking(h, base.Add(5*time.Minute)))
	if err != nil || !maps.Equal(res.Flash, want) {
		t.Fatalf("take after the restore: %+v, %v", res, err)
	}
	// Into a session that ended: nothing.
	if err := s.Delete(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(t.Context(), restoring(h, base.Add(6*time.Minute), want)); err == nil {
		t.Fatal("a restore into a deleted session succeeded")
	}
	wantCount(t, s, base.Add(6*time.Minute), 0)
}

// testFlashRotation: a rotation carries the flash values to the new ID,
// the forward record holds none, and a take or restore by a request that
// loaded the old ID reaches them there.
func testFlashRotation(t *testing.T, s store.Store, _ Pause) {
	old, renewed := hashOf("old"), hashOf("renewed")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	flash(t, s, old, base, map[string]string{"notice": "Saved"})
	res := rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	if !maps.Equal(res.Record.Flash, map[string]string{"notice": "Saved"}) {
		t.Fatalf("the rotated record holds %v", res.Record.Flash)
	}
	fwd := wantForward(t, s, old, renewed, base.Add(time.Minute))
	if len(fwd.Flash) != 0 {
		t.Fatalf("the forward record holds %v", fwd.Flash)
	}
	took, err := s.Update(t.Context(), taking(old, base.Add(2*time.Minute)))
	if err != nil || !took.Followed || took.Hash != renewed || !maps.Equal(took.Flash, map[string]string{"notice": "Saved"}) {
		t.Fatalf("take through the forward record: %+v, %v", took, err)
	}
	wantFlash(t, s, "after the take", renewed, base.Add(2*time.Minute), nil)
	// Within session.ForwardTTL of the rotation, the forward record leads
	// there.
	at := base.Add(time.Minute + session.ForwardTTL - time.Second)
	if _, err := s.Update(t.Context(), restoring(old, at, took.Flash)); err != nil {
		t.Fatal(err)
	}
	wantFlash(t, s, "after the restore", renewed, at, map[string]string{"notice": "Saved"})
	wantCount(t, s, at, 1)
}

// testFlashLimits: flash values count with the keys; a set past the limits
// changes nothing.
func testFlashLimits(t *testing.T, s store.Store, _ Pause) {
	h := hashOf("a")
	before := createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	lim := session.Limits{Keys: 2, ValueSize: 64, SessionSize: 64}
	u := in(shop, h, "alice", base.Add(time.Minute), &session.Patch{Set: map[string]string{"cart": "1"}, Flash: map[string]string{"notice": "Saved"}})
	u.Limits = lim
	res, err := s.Update(t.Context(), u)
	wantRuleError(t, "keys and a flash value over the count", res.Record, err, "too_many_keys")
	u = in(shop, h, "alice", base.Add(time.Minute), &session.Patch{Flash: map[string]string{"notice": strings.Repeat("x", 60)}})
	u.Limits = lim
	res, err = s.Update(t.Context(), u)
	wantRuleError(t, "a flash value over the size", res.Record, err, "session_too_large")
	wantUnchanged(t, s, h, before, 1)
	wantFlash(t, s, "after the refused sets", h, base, nil)
}

// testFlashDestroyAndSet: flash values set beside a Destroy start a new
// session that holds them and nothing of the old one.
func testFlashDestroyAndSet(t *testing.T, s store.Store, _ Pause) {
	h, fresh := hashOf("a"), hashOf("fresh")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	flash(t, s, h, base, map[string]string{"old": "x"})
	u := in(shop, h, "alice", base.Add(time.Minute), &session.Patch{Destroy: true, Flash: map[string]string{"notice": "Logged out"}})
	u.NewHash = ptr(fresh)
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Hash != fresh {
		t.Fatalf("logout with a flash value: %+v, %v", res, err)
	}
	wantGone(t, s, h, base.Add(time.Minute))
	got := load(t, s, fresh, base.Add(time.Minute))
	if len(got.Values) != 0 || !maps.Equal(got.Flash, map[string]string{"notice": "Logged out"}) {
		t.Fatalf("the new session holds %v and flash values %v", got.Values, got.Flash)
	}
	wantListed(t, s, shop, identity, "alice", base.Add(time.Minute))
	wantCount(t, s, base.Add(time.Minute), 1)
}

// took is what one Update returned.
type took struct {
	res store.Result
	err error
}

// stopFirst returns a hook that stops the first Update that writes until
// release is closed, and closes stopped when it stops there.
func stopFirst() (hook func(), stopped, release chan struct{}) {
	var calls atomic.Int32
	stopped, release = make(chan struct{}), make(chan struct{})
	return func() {
		if calls.Add(1) == 1 {
			close(stopped)
			<-release
		}
	}, stopped, release
}

// goUpdate runs an Update on a goroutine of its own.
func goUpdate(s store.Store, u store.Update) <-chan took {
	done := make(chan took, 1)
	go func() {
		res, err := s.Update(context.Background(), u)
		done <- took{res, err}
	}()
	return done
}

// testFlashTakeInterleaved: two requests take the flash values at once,
// interleaved step by step: the first has read the session and decided to
// take them when the second runs. Exactly one of them gets them: where the
// second can run to its end meanwhile, the second, and the first's write
// then finds the session changed, reads it again and takes nothing; where
// it cannot, the first, and the second reads what the first wrote.
func testFlashTakeInterleaved(t *testing.T, s store.Store, pause Pause) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	flash(t, s, h, base, map[string]string{"notice": "Saved"})
	hook, stopped, release := stopFirst()
	interleaves := pause(s, hook)

	first := goUpdate(s, taking(h, base.Add(time.Minute)))
	<-stopped // the first take has decided to take {notice: Saved}
	second := goUpdate(s, taking(h, base.Add(time.Minute)))
	var a, b took
	if interleaves {
		b = <-second // while the first waits to write
	}
	close(release)
	a = <-first
	if !interleaves {
		b = <-second
	}
	if a.err != nil || b.err != nil {
		t.Fatalf("takes: %v, %v", a.err, b.err)
	}
	winner, loser := a, b
	if interleaves {
		winner, loser = b, a
	}
	if !maps.Equal(winner.res.Flash, map[string]string{"notice": "Saved"}) || loser.res.Flash != nil {
		t.Fatalf("the takes got %v (first) and %v (second); want exactly one to get {notice: Saved}, the %s",
			a.res.Flash, b.res.Flash, map[bool]string{true: "second", false: "first"}[interleaves])
	}
	wantFlash(t, s, "after both takes", h, base.Add(time.Minute), nil)
}

// testFlashRestoreInterleaved: a restore that has decided to put a value
// back, while a response sets that value anew, never overwrites the new
// one: the restore is one atomic step too.
func testFlashRestoreInterleaved(t *testing.T, s store.Store, pause Pause) {
	h := hashOf("a")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	flash(t, s, h, base, map[string]string{"notice": "Saved"})
	res, err := s.Update(t.Context(), taking(h, base.Add(time.Minute)))
	if err != nil || res.Flash == nil {
		t.Fatalf("take: %+v, %v", res, err)
	}
	hook, stopped, release := stopFirst()
	interleaves := pause(s, hook)

	restored := goUpdate(s, restoring(h, base.Add(2*time.Minute), res.Flash))
	<-stopped // the restore has decided to put {notice: Saved} back
	set := goUpdate(s, in(shop, h, "alice", base.Add(2*time.Minute), &session.Patch{Flash: map[string]string{"notice": "Saved again"}}))
	var a, b took
	if interleaves {
		b = <-set
	}
	close(release)
	a = <-restored
	if !interleaves {
		b = <-set
	}
	if a.err != nil || b.err != nil {
		t.Fatalf("restore and set: %v, %v", a.err, b.err)
	}
	wantFlash(t, s, "after the restore and the set", h, base.Add(2*time.Minute), map[string]string{"notice": "Saved again"})
}
