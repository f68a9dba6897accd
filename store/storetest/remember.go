package storetest

import (
	"errors"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Remember runs the tests of remember-me (session.Patch.Remember) against
// the stores that open returns, fresh and empty each time as for Run: a
// session that becomes remembered, or stops being so, is stored whole
// under its new hash with its new deadlines, and each store keeps it, and
// expires it, by the remember timeouts.
func Remember(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Create", testRememberCreate},
		{"Rotation", testRememberRotation},
		{"KeptByWrites", testRememberKeptByWrites},
		{"Forget", testRememberForget},
		{"ForgetExpired", testRememberForgetExpired},
		{"Ended", testRememberEnded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := opened(t, open)
			tc.run(t, s)
		})
	}
}

const day = 24 * time.Hour

// rememberTimeouts are the suite's timeouts with remember timeouts of 14
// days idle and 30 days absolute.
var rememberTimeouts = func() session.Timeouts {
	t := timeouts
	t.RememberIdle, t.RememberAbsolute = 14*day, 30*day
	return t
}()

// rememberIn is in with the remember timeouts, moving the session to
// next unless next is nil.
func rememberIn(hash session.Hash, next *session.Hash, now time.Time, patch *session.Patch) store.Update {
	u := in(shop, hash, "alice", now, patch)
	u.NewHash, u.Timeouts = next, rememberTimeouts
	return u
}

// rememberPatch is a patch asking for r, setting kv ("k", "v", ...).
func rememberPatch(r session.Remember, kv ...string) *session.Patch {
	p := &session.Patch{Remember: r}
	for i := 0; i+1 < len(kv); i += 2 {
		if p.Set == nil {
			p.Set = map[string]string{}
		}
		p.Set[kv[i]] = kv[i+1]
	}
	return p
}

// loadRemembered is load with the remember timeouts.
func loadRemembered(t *testing.T, s store.Store, hash session.Hash, now time.Time) *session.Record {
	t.Helper()
	rec, err := s.Load(t.Context(), hash, now, rememberTimeouts)
	if err != nil {
		t.Fatalf("loading session %s at %s: %v", hash.Short(), now.Sub(base), err)
	}
	return rec
}

// wantGoneRemembered is wantGone with the remember timeouts.
func wantGoneRemembered(t *testing.T, s store.Store, hash session.Hash, now time.Time) {
	t.Helper()
	rec, err := s.Load(t.Context(), hash, now, rememberTimeouts)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("loading session %s at %s: got (%v, %v), want ErrNotFound", hash.Short(), now.Sub(base), rec, err)
	}
}

// wantRemembered checks whether rec is remembered, and its deadlines, as
// offsets from base.
func wantRemembered(t *testing.T, what string, rec *session.Record, remembered bool, idle, absolute time.Duration) {
	t.Helper()
	if rec.Remembered != remembered || !rec.IdleDeadline.Equal(base.Add(idle)) || !rec.AbsoluteDeadline.Equal(base.Add(absolute)) {
		t.Fatalf("%s: remembered %v, deadlines +%v and +%v; want %v, +%v and +%v", what, rec.Remembered,
			rec.IdleDeadline.Sub(base), rec.AbsoluteDeadline.Sub(base), remembered, idle, absolute)
	}
}

// rememberedSession starts a remembered session of alice under hash at
// base.
func rememberedSession(t *testing.T, s store.Store, hash session.Hash) {
	t.Helper()
	res, err := s.Update(t.Context(), store.Update{NewHash: ptr(hash), Patch: rememberPatch(session.RememberOn, "user", "alice"),
		Identity: identity, Realm: shop, Now: base, Timeouts: rememberTimeouts, Limits: limits})
	if err != nil || res.Record == nil || res.Hash != hash {
		t.Fatalf("creating a remembered session: %+v, %v", res, err)
	}
	wantRemembered(t, "the remembered session created", res.Record, true, 14*day, 30*day)
}

// testRememberCreate: a session created remembered (a login with the box
// ticked) lives by the remember timeouts, in Load, Count, List and
// ListByIdentity, and ends by them.
func testRememberCreate(t *testing.T, s store.Store) {
	h := hashOf("remembered")
	rememberedSession(t, s, h)
	wantRemembered(t, "Load", loadRemembered(t, s, h, base), true, 14*day, 30*day)
	// Far past the normal timeouts, short of the remember idle timeout.
	at := base.Add(14*day - time.Second)
	wantRemembered(t, "Load two weeks on", loadRemembered(t, s, h, at), true, 14*day, 30*day)
	wantCount(t, s, at, 1)
	if entries := listAll(t, s, 10, at, 2); len(entries) != 1 || !entries[0].Record.Remembered {
		t.Fatalf("List two weeks on: %+v, want the remembered session", entries)
	}
	if entries := listByIdentity(t, s, shop, identity, "alice", at); len(entries) != 1 || !entries[0].Record.Remembered {
		t.Fatalf("ListByIdentity two weeks on: %+v, want the remembered session", entries)
	}
	wantGoneRemembered(t, s, h, base.Add(14*day))
	wantCount(t, s, base.Add(14*day), 0)
}

// testRememberRotation: a session remembered under a new ID is written
// there whole, remembered, with deadlines from its creation and the
// request; the forward record left behind is not remembered and ends with
// the rotation's two minutes.
func testRememberRotation(t *testing.T, s store.Store) {
	old, next := hashOf("old"), hashOf("next")
	createIn(t, s, shop, old, base, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	res, err := s.Update(t.Context(), rememberIn(old, ptr(next), at, rememberPatch(session.RememberOn)))
	wantResult(t, "remember", res, err, next, map[string]string{"user": "alice"}, false)
	wantRemembered(t, "the record Update returned", res.Record, true, 10*time.Minute+14*day, 30*day)
	wantRemembered(t, "Load", loadRemembered(t, s, next, at), true, 10*time.Minute+14*day, 30*day)
	if fwd := wantForward(t, s, old, next, at); fwd.Remembered {
		t.Fatal("the forward record is remembered")
	}
	// Past the normal idle and absolute timeouts.
	later := base.Add(13 * time.Hour)
	wantRemembered(t, "Load 13 hours on", loadRemembered(t, s, next, later), true, 10*time.Minute+14*day, 30*day)
	wantGoneRemembered(t, s, old, later)
	wantCount(t, s, later, 1)
	// The ID rotates again at a login, which keeps the session remembered
	// and its absolute deadline.
	login := hashOf("login")
	res, err = s.Update(t.Context(), rememberIn(next, ptr(login), later, &session.Patch{Set: map[string]string{"user": "bob"}}))
	wantResult(t, "a login", res, err, login, map[string]string{"user": "bob"}, false)
	wantRemembered(t, "Load after the login", loadRemembered(t, s, login, later), true, 13*time.Hour+14*day, 30*day)
	if entries := listByIdentity(t, s, shop, identity, "bob", later); len(entries) != 1 || entries[0].Hash != login || !entries[0].Record.Remembered {
		t.Fatalf("ListByIdentity of bob: %+v, want the remembered session under its new hash", entries)
	}
	wantGoneRemembered(t, s, login, base.Add(30*day))
	wantCount(t, s, base.Add(30*day), 0)
}

// testRememberKeptByWrites: a touch, a set, a delete and an update in
// place that asks again for what the session is keep it remembered, with
// its absolute deadline, and touch it by the remember idle timeout.
func testRememberKeptByWrites(t *testing.T, s store.Store) {
	h := hashOf("remembered")
	rememberedSession(t, s, h)
	steps := []struct {
		name  string
		patch *session.Patch
	}{
		{"a touch", nil},
		{"a set", &session.Patch{Set: map[string]string{"cart": "3"}}},
		{"a delete", &session.Patch{Delete: []string{"cart"}}},
		{"remember true again, in place", rememberPatch(session.RememberOn, "theme", "dark")},
		{"remember false, in place: nothing to do with persistence", rememberPatch(session.RememberOff, "lang", "fr")},
	}
	for i, step := range steps {
		at := time.Duration(i+1) * 13 * time.Hour // each past the normal timeouts
		res, err := s.Update(t.Context(), rememberIn(h, nil, base.Add(at), step.patch))
		if err != nil || res.Record == nil || res.Hash != h {
			t.Fatalf("%s: %+v, %v", step.name, res, err)
		}
		wantRemembered(t, step.name+": the record Update returned", res.Record, true, at+14*day, 30*day)
		wantRemembered(t, step.name+": Load", loadRemembered(t, s, h, base.Add(at)), true, at+14*day, 30*day)
	}
	got := loadRemembered(t, s, h, base.Add(5*13*time.Hour))
	if want := map[string]string{"user": "alice", "theme": "dark", "lang": "fr"}; !maps.Equal(got.Values, want) {
		t.Fatalf("values %v, want %v", got.Values, want)
	}
}

// testRememberForget: a remembered session returned to the normal
// timeouts within them moves to its new ID with their deadlines, and ends
// by them.
func testRememberForget(t *testing.T, s store.Store) {
	h, next := hashOf("remembered"), hashOf("forgotten")
	rememberedSession(t, s, h)
	at := base.Add(20 * time.Minute)
	res, err := s.Update(t.Context(), rememberIn(h, ptr(next), at, rememberPatch(session.RememberOff, "cart", "1")))
	wantResult(t, "forget", res, err, next, map[string]string{"user": "alice", "cart": "1"}, false)
	wantRemembered(t, "the record Update returned", res.Record, false, 50*time.Minute, 12*time.Hour)
	wantRemembered(t, "Load", loadRemembered(t, s, next, at), false, 50*time.Minute, 12*time.Hour)
	if entries := listByIdentity(t, s, shop, identity, "alice", at); len(entries) != 1 || entries[0].Record.Remembered {
		t.Fatalf("ListByIdentity: %+v, want the session, not remembered", entries)
	}
	wantGoneRemembered(t, s, next, base.Add(50*time.Minute))
	wantCount(t, s, base.Add(50*time.Minute), 0)
}

// testRememberForgetExpired: a remembered session returned to normal
// timeouts it has outlived ends, with nothing in its place: no record, no
// forward record, no index entry.
func testRememberForgetExpired(t *testing.T, s store.Store) {
	h, next := hashOf("remembered"), hashOf("forgotten")
	rememberedSession(t, s, h)
	at := base.Add(13 * time.Hour) // past the normal absolute timeout
	res, err := s.Update(t.Context(), rememberIn(h, ptr(next), at, rememberPatch(session.RememberOff, "cart", "1")))
	if err != nil || !reflect.DeepEqual(res, store.Result{Acted: h, Expired: true}) {
		t.Fatalf("forget past the normal timeouts: %+v, %v; want the session ended, Result.Expired", res, err)
	}
	wantGoneRemembered(t, s, h, at)
	wantGoneRemembered(t, s, next, at)
	wantCount(t, s, at, 0)
	if entries := listByIdentity(t, s, shop, identity, "alice", at); len(entries) != 0 {
		t.Fatalf("ListByIdentity: %+v, want none", entries)
	}
	deleteByIdentityIn(t, s, shop, identity, "alice", 0)

	// Through a forward record, the successor ends.
	old, renewed, last := hashOf("old"), hashOf("renewed"), hashOf("last")
	rememberedSession(t, s, old)
	u := rememberIn(old, ptr(renewed), base.Add(13*time.Hour), &session.Patch{Renew: true})
	if res, err := s.Update(t.Context(), u); err != nil || res.Hash != renewed {
		t.Fatalf("renewing: %+v, %v", res, err)
	}
	res, err = s.Update(t.Context(), rememberIn(old, ptr(last), base.Add(13*time.Hour+time.Minute), rememberPatch(session.RememberOff, "cart", "1")))
	if err != nil || !reflect.DeepEqual(res, store.Result{Acted: renewed, Expired: true, Followed: true}) {
		t.Fatalf("forget through the forward record: %+v, %v; want the successor ended", res, err)
	}
	for _, h := range []session.Hash{renewed, last} {
		wantGoneRemembered(t, s, h, base.Add(13*time.Hour+time.Minute))
	}
	wantCount(t, s, base.Add(13*time.Hour+time.Minute), 0)
}

// testRememberEnded: a logout, a revocation and a revocation by user end
// a remembered session as any other.
func testRememberEnded(t *testing.T, s store.Store) {
	at := base.Add(13 * time.Hour)
	logout, revoked, byUser := hashOf("logout"), hashOf("revoked"), hashOf("by user")
	for _, h := range []session.Hash{logout, revoked, byUser} {
		rememberedSession(t, s, h)
	}
	res, err := s.Update(t.Context(), rememberIn(logout, nil, at, &session.Patch{Destroy: true}))
	wantResult(t, "logout", res, err, logout, nil, false)
	wantGoneRemembered(t, s, logout, at)
	if err := s.Delete(t.Context(), revoked); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantGoneRemembered(t, s, revoked, at)
	deleteByIdentityIn(t, s, shop, identity, "alice", 1)
	wantGoneRemembered(t, s, byUser, at)
	wantCount(t, s, at, 0)
}
