package store

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideNeverMovesDeadlinesBack: a request that loaded the session
// before another request touched it, and answers after, writes its changes
// without moving LastSeen and the idle deadline back to when it began: a
// touch is a use at Now, and the session was used later than that. In
// place or moved to a new ID, and a touch alone at an earlier time writes
// nothing.
func TestDecideNeverMovesDeadlinesBack(t *testing.T) {
	later := now.Add(5 * time.Minute) // a newer request's touch
	stored := func() *session.Record {
		rec := live(realm, "user=alice")
		timeouts.Touch(rec, later)
		return rec
	}
	for _, tc := range []struct {
		name string
		u    Update
	}{
		{"a key set in place", upd("alice", set("cart=3"))},
		{"a renewal", with(upd("alice", &session.Patch{Renew: true}), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"remembered", with(upd("alice", &session.Patch{Remember: session.RememberOn}), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"a flash value taken, touching", with(upd("alice", nil), func(u *Update) { u.TakeFlash = true })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := stored()
			rec.Flash = map[string]string{"notice": "Saved"}
			o := Decide(tc.u, hashA, rec, 0)
			if o.Err != nil || o.Write == nil {
				t.Fatalf("outcome %+v", o)
			}
			if !o.Write.LastSeen.Equal(later) {
				t.Errorf("LastSeen went from %v back to %v", later, o.Write.LastSeen)
			}
			want := &session.Record{Remembered: o.Write.Remembered, AbsoluteDeadline: o.Write.AbsoluteDeadline}
			timeouts.Touch(want, later)
			if !o.Write.IdleDeadline.Equal(want.IdleDeadline) {
				t.Errorf("the idle deadline is %v, want %v", o.Write.IdleDeadline, want.IdleDeadline)
			}
		})
	}
	t.Run("a touch alone", func(t *testing.T) {
		o := Decide(upd("alice", nil), hashA, stored(), 0)
		if o.Err != nil || o.Writes() || o.Result.Record == nil || !o.Result.Record.LastSeen.Equal(later) {
			t.Fatalf("a touch at %v of a session seen at %v: %+v", now, later, o)
		}
	})
}

// TestDecideTouchesAfterAClockStepBack: a LastSeen after the request's
// time is a newer request's touch only if the request was in flight
// then. One whose commit, too, comes more than session.MaxClockLag
// before that LastSeen was made after the clock stepped back, and is a
// use at its time: LastSeen and the idle deadline move back to it, or no
// use would touch the session until the clock caught up (and Redis's TTL,
// on its own clock, would end it in use). NoTouch still touches nothing.
func TestDecideTouchesAfterAClockStepBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		seen    time.Duration // the stored LastSeen, from now
		commit  time.Duration // Commit, from now; -1: zero
		noTouch bool
		touches bool
	}{
		{"a slow request, committed after the newer touch", 5 * time.Minute, 6 * time.Minute, false, false},
		{"a slow request, committed just before the newer touch", 5 * time.Minute, 5*time.Minute - session.MaxClockLag, false, false},
		{"no Commit: nothing tells a step", time.Hour, -1, false, false},
		{"the clock stepped back by an hour", time.Hour, time.Second, false, true},
		{"a step just past the lag", session.MaxClockLag + time.Second, 0, false, true},
		{"a step within the lag", session.MaxClockLag, 0, false, false},
		{"stepped back, no_touch", time.Hour, time.Second, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := live(realm, "user=alice")
			timeouts.Touch(rec, now.Add(tc.seen))
			u := upd("alice", nil)
			u.NoTouch = tc.noTouch
			if tc.commit >= 0 {
				u.Commit = now.Add(tc.commit)
			}
			if got := timeouts.NeedsTouch(rec, now); got != (tc.seen > session.MaxClockLag) {
				t.Errorf("NeedsTouch at %v of a session seen %v later: %v", now, tc.seen, got)
			}
			o := Decide(u, hashA, rec, 0)
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			if !tc.touches {
				if o.Writes() || !o.Result.Record.LastSeen.Equal(now.Add(tc.seen)) {
					t.Fatalf("touched: %+v", o)
				}
				return
			}
			if o.Write == nil || !o.Write.LastSeen.Equal(now) || !o.Write.IdleDeadline.Equal(now.Add(timeouts.Idle)) {
				t.Fatalf("a use at %v after a step back wrote %+v, want it seen then", now, o.Write)
			}
		})
	}
}
