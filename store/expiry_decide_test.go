package store

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideNoUseAfterTheIdleDeadline: a request that is no use of its
// session (NoTouch: no_touch, X-Session-Touch: false) began (Now) before
// the idle deadline and is applied (Commit) after it. Its use when it
// began is what holds off the idle deadline for a request in flight, and
// it has none: the session ended while it was in flight, and the update
// finds it ended, whatever it does, rather than write into a session
// that nothing can open any more or move it to a new ID. It leaves the
// record for the store to remove: another request in flight across the
// deadline, a use, keeps the session. One applied before the deadline,
// or after another use moved the deadline, or a use itself, applies.
func TestDecideNoUseAfterTheIdleDeadline(t *testing.T) {
	end := t0.Add(timeouts.Idle)
	began := end.Add(-30 * time.Second)
	updates := []struct {
		name string
		u    Update
	}{
		{"a touch", upd("alice", nil)},
		{"a key set in place", upd("alice", set("cart=3"))},
		{"a flash value", upd("alice", &session.Patch{Flash: map[string]string{"notice": "saved"}})},
		{"a renewal", with(upd("alice", &session.Patch{Renew: true}), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"remembered", with(upd("alice", &session.Patch{Remember: session.RememberOn}), func(u *Update) { u.NewHash = ptr(hashC) })},
		{"a login", with(upd("alice", set("user=bob")), func(u *Update) { u.NewHash = ptr(hashC) })},
	}
	for _, c := range updates {
		for _, at := range []struct {
			name     string
			commit   time.Time
			seenLate bool // another request, a use, touched the session after this one began
			noTouch  bool
			ended    bool
		}{
			{"no use, applied after it", end.Add(time.Minute), false, true, true},
			{"no use, applied at it", end, false, true, true},
			{"no use, applied before it", end.Add(-time.Second), false, true, false},
			{"no use, applied when it began", time.Time{}, false, true, false},
			{"no use, applied after it, another use meanwhile", end.Add(time.Minute), true, true, false},
			{"a use, applied after it", end.Add(time.Minute), false, false, false},
		} {
			t.Run(c.name+", "+at.name, func(t *testing.T) {
				u := with(c.u, func(u *Update) { u.Now, u.Commit, u.NoTouch = began, at.commit, at.noTouch })
				for hop := range 2 {
					rec := live(realm, "user=alice")
					if at.seenLate {
						timeouts.Touch(rec, began.Add(10*time.Second))
					}
					o := Decide(u, hashA, rec, hop)
					switch {
					case at.ended && (!errors.Is(o.Err, ErrNotFound) || o.Writes()):
						t.Errorf("hop %d: %+v, %v; want the session found ended, and nothing written or removed", hop, o.Result, o.Err)
					case !at.ended && o.Err != nil:
						t.Errorf("hop %d: %v; want it applied", hop, o.Err)
					}
				}
			})
		}
	}
}
