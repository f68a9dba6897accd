package store

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideAfterTheAbsoluteDeadline: a request began (Now) before its
// session's absolute deadline and is applied (Commit) after it. Its use
// when it began keeps the session from ending idle, but nothing moves
// the absolute deadline: the session ended while the request was in
// flight, and the update finds it gone, as it would after a logout, in
// place, moved to a new ID, remembered (which would give it a later
// absolute deadline), or reached through a forward record. An update
// applied before the deadline, or one whose idle deadline alone passed
// meanwhile, applies.
func TestDecideAfterTheAbsoluteDeadline(t *testing.T) {
	end := t0.Add(timeouts.Absolute)
	began := end.Add(-30 * time.Second)
	stored := func() *session.Record {
		rec := live(realm, "user=alice")
		timeouts.Touch(rec, began.Add(-timeouts.Idle+time.Second)) // idle, a second from its end
		return rec
	}
	updates := []struct {
		name string
		u    Update
	}{
		{"a key set in place", upd("alice", set("cart=3"))},
		{"a renewal", with(upd("alice", &session.Patch{Renew: true}), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"remembered", with(upd("alice", &session.Patch{Remember: session.RememberOn}), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"a login", with(upd("alice", set("user=bob")), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"a touch", upd("alice", nil)},
	}
	for _, c := range updates {
		for _, at := range []struct {
			name   string
			commit time.Time
			ended  bool
		}{
			{"applied after it", end.Add(30 * time.Second), true},
			{"applied at it", end, true},
			{"applied before it, after the idle deadline", end.Add(-time.Second), false},
			{"applied when it began", time.Time{}, false},
		} {
			t.Run(c.name+", "+at.name, func(t *testing.T) {
				u := with(c.u, func(u *Update) { u.Now, u.Commit = began, at.commit })
				for hop, rec := range map[int]*session.Record{0: stored(), 1: stored()} {
					o := Decide(u, hashA, rec, hop)
					switch {
					case at.ended && (!errors.Is(o.Err, ErrNotFound) || o.Write != nil || !o.Remove):
						t.Errorf("hop %d: %+v, %v; want the session found ended, and removed", hop, o.Result, o.Err)
					case !at.ended && o.Err != nil:
						t.Errorf("hop %d: %v; want it applied", hop, o.Err)
					}
				}
			})
		}
	}
}
