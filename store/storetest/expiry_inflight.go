package storetest

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Expire makes s, a store that open returned, remove by itself what it
// would once its own clock has moved elapsed since the suite's writes, to
// now: bolt's sweeper as its ticker runs it, at now; Redis's key TTLs run
// down by elapsed. The suite calls it once per store, after every write
// it makes before.
type Expire func(t *testing.T, s store.Store, now time.Time, elapsed time.Duration)

// ExpiryInFlight runs the tests of requests in flight across their
// session's deadlines against the stores that open returns, fresh and
// empty each time as for Run, with expire standing for the time that
// passes meanwhile. Decide judges an update by when its request began
// (Update.Now): one that began before the session's idle deadline keeps
// it, however late it is applied, and none outlives the absolute deadline
// (Update.Commit); one that is no use of the session (NoTouch) holds off
// nothing, and finds it ended after the idle deadline, leaving it to the
// others in flight. A store's own removal of expired sessions (bolt's
// sweeper, Redis's TTL) must not decide otherwise: it keeps a session
// store.ExpiryGrace past its deadline, and removes it then.
func ExpiryInFlight(t *testing.T, open func(t *testing.T) store.Store, expire Expire) {
	for _, st := range inFlightSteps() {
		t.Run(st.name, func(t *testing.T) { runInFlightStep(t, open, expire, st) })
	}
	t.Run("NoUseThenUse", func(t *testing.T) { testNoUseThenUse(t, open, expire) })
	t.Run("AfterTheGrace", func(t *testing.T) { testAfterTheGrace(t, open, expire) })
	t.Run("LongerThanIdle", func(t *testing.T) { testLongerThanIdle(t, open, expire) })
	t.Run("LongerThanIdleAfterANewerUse", func(t *testing.T) { testLongerThanIdleAfterANewerUse(t, open, expire) })
	t.Run("AbsoluteDeadline", func(t *testing.T) { testAbsoluteDeadline(t, open, expire) })
}

type inFlightStep struct {
	name       string
	remembered bool // the session is remembered: the remember timeouts
	patch      func() *session.Patch
	renew      bool // the update moves the session to a new hash
	// check checks what the update returned, and the store after it
	// at then, once the session's deadline has passed.
	check inFlightCheck
}

// inFlightCheck checks what an update returned, and the store after it
// at then, once the session's deadline has passed.
type inFlightCheck func(t *testing.T, s store.Store, h, next session.Hash, res store.Result, began, then time.Time)

// kept checks that the update kept the session, with values, touched when
// its request began if touched.
func kept(values map[string]string, touched bool) inFlightCheck {
	return func(t *testing.T, s store.Store, h, next session.Hash, res store.Result, began, then time.Time) {
		t.Helper()
		at := h
		if next != (session.Hash{}) {
			at = next
		}
		if res.Record == nil || res.Hash != at || !maps.Equal(res.Record.Values, values) {
			t.Fatalf("Update = %+v, want the session kept at %s with %v", res, at.Short(), values)
		}
		if !touched {
			return
		}
		if !res.Record.LastSeen.Equal(began) {
			t.Errorf("LastSeen = %s, want when the request began, %s", res.Record.LastSeen.Sub(base), began.Sub(base))
		}
		rec, err := s.Load(t.Context(), at, then, rememberTimeouts)
		if err != nil || !maps.Equal(rec.Values, values) {
			t.Fatalf("Load at %s after the update = %+v, %v; want the session, touched when the request began", then.Sub(base), rec, err)
		}
	}
}

// inFlightSteps are the kinds of update a request in flight across the
// idle deadline may make, and what each must leave.
func inFlightSteps() []inFlightStep {
	return []inFlightStep{
		{name: "Touch", check: kept(map[string]string{"user": "alice", "cart": "apple"}, true)},
		{name: "Set", patch: func() *session.Patch { return &session.Patch{Set: map[string]string{"cart": "pear"}} },
			check: kept(map[string]string{"user": "alice", "cart": "pear"}, true)},
		{name: "Delete", patch: func() *session.Patch { return &session.Patch{Delete: []string{"cart"}} },
			check: kept(map[string]string{"user": "alice"}, true)},
		{name: "Flash", patch: func() *session.Patch { return &session.Patch{Flash: map[string]string{"notice": "saved"}} },
			check: func(t *testing.T, s store.Store, h, next session.Hash, res store.Result, began, then time.Time) {
				kept(map[string]string{"user": "alice", "cart": "apple"}, true)(t, s, h, next, res, began, then)
				if res.Record.Flash["notice"] != "saved" {
					t.Fatalf("flash values = %v, want the notice", res.Record.Flash)
				}
			}},
		{name: "Renew", renew: true, patch: func() *session.Patch { return &session.Patch{Renew: true} },
			check: kept(map[string]string{"user": "alice", "cart": "apple"}, true)},
		{name: "Login", renew: true, patch: func() *session.Patch { return &session.Patch{Renew: true, Set: map[string]string{"user": "bob"}} },
			check: kept(map[string]string{"user": "bob", "cart": "apple"}, true)},
		{name: "Remember", renew: true, patch: func() *session.Patch { return &session.Patch{Remember: session.RememberOn} },
			check: func(t *testing.T, s store.Store, h, next session.Hash, res store.Result, began, then time.Time) {
				kept(map[string]string{"user": "alice", "cart": "apple"}, true)(t, s, h, next, res, began, then)
				if !res.Record.Remembered || !res.Remembered {
					t.Fatalf("Update = %+v, want the session remembered", res)
				}
			}},
		{name: "Destroy", patch: func() *session.Patch { return &session.Patch{Destroy: true} },
			check: func(t *testing.T, s store.Store, h, next session.Hash, res store.Result, began, then time.Time) {
				if res.Record != nil || res.Acted != h {
					t.Fatalf("Update = %+v, want the session ended by the logout (Acted %s)", res, h.Short())
				}
			}},
		{name: "DestroyAndSet", renew: true, patch: func() *session.Patch {
			return &session.Patch{Destroy: true, Set: map[string]string{"notice": "bye"}}
		}, check: func(t *testing.T, s store.Store, h, next session.Hash, res store.Result, began, then time.Time) {
			if res.Record == nil || res.Hash != next || res.Acted != h || !maps.Equal(res.Record.Values, map[string]string{"notice": "bye"}) {
				t.Fatalf("Update = %+v, want the session ended (Acted %s) and a new one at %s", res, h.Short(), next.Short())
			}
		}},
		{name: "RememberedTouch", remembered: true, check: kept(map[string]string{"user": "alice", "cart": "apple"}, true)},
		{name: "RememberedSet", remembered: true, patch: func() *session.Patch { return &session.Patch{Set: map[string]string{"cart": "pear"}} },
			check: kept(map[string]string{"user": "alice", "cart": "pear"}, true)},
	}
}

// runInFlightStep runs one step of ExpiryInFlight on a fresh store.
func runInFlightStep(t *testing.T, open func(t *testing.T) store.Store, expire Expire, st inFlightStep) {
	s := opened(t, open)
	h, next := hashOf("inflight"), hashOf("inflight-next")
	// The remember timeouts apply to a remembered session, and to
	// the one that Remember makes so; the others are judged by the
	// normal ones.
	idle, to := timeouts.Idle, rememberTimeouts
	u := in(shop, h, "alice", base, &session.Patch{Set: map[string]string{"user": "alice", "cart": "apple"}})
	u.HasHash, u.NewHash, u.Timeouts = false, ptr(h), to
	if st.remembered {
		idle, u.Patch.Remember = to.RememberIdle, session.RememberOn
	}
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatalf("creating the session: %v", err)
	}
	began := base.Add(idle - 30*time.Second) // 30s before the idle deadline
	commit := base.Add(idle + time.Minute)   // a minute after it
	if _, err := s.Load(t.Context(), h, began, to); err != nil {
		t.Fatalf("the request that began 30s before the idle deadline found no session: %v", err)
	}
	expire(t, s, commit, commit.Sub(base))
	u = in(shop, h, "alice", began, nil)
	u.Commit, u.Timeouts, u.RenewOn = commit, to, []string{"user"}
	if st.patch != nil {
		u.Patch = st.patch()
	}
	if st.renew {
		u.NewHash = ptr(next)
	} else {
		next = session.Hash{}
	}
	res, err := s.Update(t.Context(), u)
	if err != nil {
		t.Fatalf("the update of a request in flight across the idle deadline: %v (a store removed the session before store.ExpiryGrace had passed)", err)
	}
	st.check(t, s, h, next, res, began, commit)
}

// A request that is no use of the session (NoTouch) holds off nothing:
// applied after the idle deadline, it finds the session ended, and
// writes nothing; nor does it remove the session, which a request in
// flight across the deadline that is a use keeps.
func testNoUseThenUse(t *testing.T, open func(t *testing.T) store.Store, expire Expire) {
	s := opened(t, open)
	h := hashOf("inflight")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice", "cart": "apple"})
	began, commit := base.Add(timeouts.Idle-30*time.Second), base.Add(timeouts.Idle+time.Minute)
	expire(t, s, commit, commit.Sub(base))
	u := in(shop, h, "alice", began, &session.Patch{Set: map[string]string{"cart": "pear"}})
	u.Commit, u.NoTouch = commit, true
	if res, err := s.Update(t.Context(), u); !errors.Is(err, store.ErrNotFound) || res.Record != nil {
		t.Fatalf("Update of a request that is no use, applied after the idle deadline = %+v, %v; want ErrNotFound", res, err)
	}
	u = in(shop, h, "alice", began.Add(10*time.Second), nil)
	u.Commit = commit
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Record == nil || !maps.Equal(res.Record.Values, map[string]string{"user": "alice", "cart": "apple"}) {
		t.Fatalf("Update of a request that is a use, in flight across the idle deadline, after one that is none = %+v, %v; want the session kept as it was", res, err)
	}
	if _, err := s.Load(t.Context(), h, commit, timeouts); err != nil {
		t.Fatalf("Load after the use: %v", err)
	}
}

// Once store.ExpiryGrace has passed, a store removes the session: an
// update of a request that began before the idle deadline finds it no
// more, and none of its changes start a session.
func testAfterTheGrace(t *testing.T, open func(t *testing.T) store.Store, expire Expire) {
	s := opened(t, open)
	h := hashOf("inflight")
	create(t, s, h, base, map[string]string{"user": "alice"})
	began := base.Add(timeouts.Idle - 30*time.Second)
	commit := base.Add(timeouts.Idle + store.ExpiryGrace + time.Minute)
	expire(t, s, commit, commit.Sub(base))
	u := in("", h, "alice", began, &session.Patch{Set: map[string]string{"cart": "pear"}})
	u.Commit, u.NewHash = commit, ptr(hashOf("other"))
	if res, err := s.Update(t.Context(), u); !errors.Is(err, store.ErrNotFound) || res.Record != nil {
		t.Fatalf("Update %s after the idle deadline, past the grace = %+v, %v; want ErrNotFound (the store keeps expired sessions for ever)",
			commit.Sub(base), res, err)
	}
	wantCount(t, s, commit, 0)
}

// Nothing outlives the absolute deadline: the grace keeps the record,
// and Decide still finds it ended for a request applied past it.
func testAbsoluteDeadline(t *testing.T, open func(t *testing.T) store.Store, expire Expire) {
	s := opened(t, open)
	h := hashOf("inflight")
	short := session.Timeouts{Idle: time.Hour, Absolute: 30 * time.Minute, TouchInterval: time.Minute}
	u := in(shop, h, "alice", base, &session.Patch{Set: map[string]string{"user": "alice"}})
	u.HasHash, u.NewHash, u.Timeouts = false, ptr(h), short
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	began, commit := base.Add(29*time.Minute+30*time.Second), base.Add(31*time.Minute)
	expire(t, s, commit, commit.Sub(base))
	u = in(shop, h, "alice", began, &session.Patch{Set: map[string]string{"cart": "pear"}})
	u.Commit, u.Timeouts = commit, short
	if res, err := s.Update(t.Context(), u); !errors.Is(err, store.ErrNotFound) || res.Record != nil {
		t.Fatalf("Update applied past the absolute deadline = %+v, %v; want ErrNotFound", res, err)
	}
	if _, err := s.Load(t.Context(), h, commit, short); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load past the absolute deadline: %v, want ErrNotFound", err)
	}
}

// A request that began longer than the idle timeout before it is applied
// (a slow upload under a short idle_timeout), and before the idle
// deadline, holds the session off by its use when it began, which does
// not carry it to the commit: the session ended while the app ran, and
// the update writes nothing that is over already. Its changes and its
// new ID find the session ended (as a request that is no use of it
// does), unless they take it out of the timeouts that ended it (a
// remember); a logout still ends it; and a session it starts (a login
// of an anonymous request, keys set beside a logout) starts when it is
// applied, live at once.
func testLongerThanIdle(t *testing.T, open func(t *testing.T) store.Store, expire Expire) {
	began := base.Add(10 * time.Second)
	commit := base.Add(timeouts.Idle + time.Minute) // within the grace of the deadline, base+Idle
	next := hashOf("inflight-next")
	ended := func(t *testing.T, s store.Store, h session.Hash, res store.Result, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrNotFound) || res.Record != nil {
			t.Fatalf("Update of a request that began longer than the idle timeout ago = %+v, %v; want ErrNotFound", res, err)
		}
		for _, at := range []session.Hash{h, next} {
			if rec, err := s.Load(t.Context(), at, commit, rememberTimeouts); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Load of %s after the update = %+v, %v; want ErrNotFound", at.Short(), rec, err)
			}
		}
	}
	live := func(values map[string]string) func(t *testing.T, s store.Store, h session.Hash, res store.Result, err error) {
		return func(t *testing.T, s store.Store, h session.Hash, res store.Result, err error) {
			t.Helper()
			if err != nil || res.Record == nil {
				t.Fatalf("Update = %+v, %v; want a live session", res, err)
			}
			rec, err := s.Load(t.Context(), res.Hash, commit, rememberTimeouts)
			if err != nil || !maps.Equal(rec.Values, values) {
				t.Fatalf("Load at the commit of the session the update wrote = %+v, %v; want it live with %v", rec, err, values)
			}
		}
	}
	rows := []struct {
		name    string
		anon    bool // the request presented no session
		patch   *session.Patch
		renew   bool
		nextTo  bool // a session the update starts goes under next
		outcome func(t *testing.T, s store.Store, h session.Hash, res store.Result, err error)
	}{
		{name: "Touch", outcome: ended},
		{name: "Set", patch: &session.Patch{Set: map[string]string{"cart": "pear"}}, outcome: ended},
		{name: "Delete", patch: &session.Patch{Delete: []string{"cart"}}, outcome: ended},
		{name: "Flash", patch: &session.Patch{Flash: map[string]string{"notice": "saved"}}, outcome: ended},
		{name: "Renew", renew: true, patch: &session.Patch{Renew: true}, outcome: ended},
		{name: "Login", renew: true, patch: &session.Patch{Renew: true, Set: map[string]string{"user": "bob"}}, outcome: ended},
		{name: "Remember", renew: true, patch: &session.Patch{Remember: session.RememberOn},
			outcome: live(map[string]string{"user": "alice", "cart": "apple"})},
		{name: "Destroy", patch: &session.Patch{Destroy: true},
			outcome: func(t *testing.T, s store.Store, h session.Hash, res store.Result, err error) {
				if err != nil || res.Record != nil || res.Acted != h {
					t.Fatalf("Update = %+v, %v; want the session ended by the logout", res, err)
				}
			}},
		{name: "DestroyAndSet", renew: true, patch: &session.Patch{Destroy: true, Set: map[string]string{"notice": "bye"}},
			outcome: live(map[string]string{"notice": "bye"})},
		{name: "AnonymousLogin", anon: true, renew: true, patch: &session.Patch{Set: map[string]string{"user": "bob"}},
			outcome: live(map[string]string{"user": "bob"})},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			s := opened(t, open)
			h := hashOf("inflight")
			u := in(shop, h, "alice", base, &session.Patch{Set: map[string]string{"user": "alice", "cart": "apple"}})
			u.HasHash, u.NewHash, u.Timeouts = false, ptr(h), rememberTimeouts
			if _, err := s.Update(t.Context(), u); err != nil {
				t.Fatalf("creating the session: %v", err)
			}
			expire(t, s, commit, commit.Sub(base))
			u = in(shop, h, "alice", began, row.patch)
			u.Commit, u.Timeouts, u.RenewOn = commit, rememberTimeouts, []string{"user"}
			if row.anon {
				u.HasHash, u.Hash, u.Seen = false, session.Hash{}, ""
			}
			if row.renew {
				u.NewHash = ptr(next)
			}
			res, err := s.Update(t.Context(), u)
			row.outcome(t, s, h, res, err)
		})
	}
}

// A request that outlasts the idle timeout keeps the session when a newer
// request used it meanwhile: that use carries the session to the slow
// one's commit, which writes its changes without moving the deadline
// back.
func testLongerThanIdleAfterANewerUse(t *testing.T, open func(t *testing.T) store.Store, expire Expire) {
	s := opened(t, open)
	h := hashOf("inflight")
	createIn(t, s, shop, h, base, map[string]string{"user": "alice"})
	used := base.Add(20 * time.Minute)
	if _, err := s.Update(t.Context(), in(shop, h, "alice", used, nil)); err != nil {
		t.Fatalf("the newer use: %v", err)
	}
	commit := base.Add(timeouts.Idle + time.Minute)
	expire(t, s, commit, commit.Sub(base))
	u := in(shop, h, "alice", base.Add(10*time.Second), &session.Patch{Set: map[string]string{"cart": "pear"}})
	u.Commit = commit
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Record == nil || res.Record.Values["cart"] != "pear" || !res.Record.LastSeen.Equal(used) {
		t.Fatalf("Update of a slow request after a newer use = %+v, %v; want the cart set and the newer use kept", res, err)
	}
	if rec, err := s.Load(t.Context(), h, commit, timeouts); err != nil || rec.Values["cart"] != "pear" {
		t.Fatalf("Load after the slow write = %+v, %v; want the session with the cart", rec, err)
	}
}
