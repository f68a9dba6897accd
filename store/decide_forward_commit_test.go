package store

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestForwardRecordEndsAfterTheCommit: the forward record a rotation
// leaves under the old hash leads on for session.ForwardTTL from when the
// rotation is applied (Commit), not from when its request began (Now): a
// rotation whose request took longer than that left one that was already
// over when it was written. A zero Commit, or one before Now (a clock
// that stepped back during the request), anchors it at Now; the session's
// own end still bounds it. Every update that moves a session.
func TestForwardRecordEndsAfterTheCommit(t *testing.T) {
	remembered := func() *session.Record { return kept(t0, "user=alice") }
	moves := []struct {
		name   string
		stored func() *session.Record
		patch  *session.Patch
	}{
		{"a renewal", func() *session.Record { return live(realm, "user=alice") }, &session.Patch{Renew: true}},
		{"a login", func() *session.Record { return live(realm, "cart=3") }, set("user=alice")},
		{"a change of role", func() *session.Record { return live(realm, "user=alice") }, set("role=admin")},
		{"remembered", func() *session.Record { return live(realm, "user=alice") }, &session.Patch{Remember: session.RememberOn}},
		{"forgotten", remembered, &session.Patch{Remember: session.RememberOff}},
	}
	commits := []struct {
		name   string
		commit time.Time
		end    time.Time
	}{
		{"applied three minutes after it began", now.Add(3 * time.Minute), now.Add(3*time.Minute + session.ForwardTTL)},
		{"applied a second after it began", now.Add(time.Second), now.Add(time.Second + session.ForwardTTL)},
		{"applied when it began", now, now.Add(session.ForwardTTL)},
		{"with no commit time", time.Time{}, now.Add(session.ForwardTTL)},
		{"applied before it began (the clock stepped back)", now.Add(-time.Hour), now.Add(session.ForwardTTL)},
	}
	for _, m := range moves {
		for _, c := range commits {
			t.Run(m.name+", "+c.name, func(t *testing.T) {
				seen := ""
				if m.stored().Values["user"] != "" {
					seen = "alice"
				}
				u := with(upd(seen, m.patch), func(u *Update) {
					u.NewHash, u.Commit, u.Timeouts = ptr(hashC), c.commit, rememberTimeouts
				})
				o := Decide(u, hashA, m.stored(), 0)
				if o.Err != nil {
					t.Fatalf("the rotation failed: %v", o.Err)
				}
				if o.Forward == nil || !o.Forward.Forwarded() || *o.Forward.Successor != hashC {
					t.Fatalf("Forward = %+v, want a forward record to the new hash", o.Forward)
				}
				if got := o.Forward.ExpiresAt(); !got.Equal(c.end) {
					t.Fatalf("the forward record ends at %v, want %v: %v after the rotation was applied", got, c.end, session.ForwardTTL)
				}
			})
		}
	}
	t.Run("bounded by the session's end", func(t *testing.T) {
		rec := live(realm, "user=alice")
		end := t0.Add(timeouts.Absolute)
		began := end.Add(-3 * time.Minute)
		timeouts.Touch(rec, began)
		u := with(upd("alice", &session.Patch{Renew: true}), func(u *Update) {
			u.NewHash, u.Now, u.Commit = ptr(hashC), began, end.Add(-time.Minute)
		})
		o := Decide(u, hashA, rec, 0)
		if o.Err != nil || o.Forward == nil {
			t.Fatalf("the rotation: %+v, %v; want it applied with a forward record", o.Forward, o.Err)
		}
		if got := o.Forward.ExpiresAt(); !got.Equal(end) {
			t.Fatalf("the forward record ends at %v, want the session's absolute deadline %v: it must not outlive what it leads to", got, end)
		}
	})
}
