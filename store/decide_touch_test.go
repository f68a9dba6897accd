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
