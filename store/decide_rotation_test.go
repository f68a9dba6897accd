package store

import (
	"errors"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideHoldsTheRotationToTheSessionAsApplied: with RenewOn, an update
// that keeps the session where it is but would change, in the record it
// reaches (through a forward record, after another request's rotation),
// a renew_on key or the persistence, writes nothing and returns
// ErrNeedsRotation; the same update with a NewHash moves the session. One
// that changes none of them, or that has no RenewOn (callers that decide
// nothing about rotations), goes on in place as before.
func TestDecideHoldsTheRotationToTheSessionAsApplied(t *testing.T) {
	renewOn := []string{"user", "role_x"}
	remembered := kept(now, "user=alice", "role_x=user")
	del := func(k string) *session.Patch { return &session.Patch{Delete: []string{k}} }
	tests := []struct {
		name    string
		u       Update
		stored  *session.Record
		hop     int
		refused bool
	}{
		{"a renew_on key set back, through a forward record",
			upd("alice", set("role_x=admin")), live(realm, "user=alice", "role_x=user"), 1, true},
		{"a renew_on key in the other spelling",
			upd("alice", set("role-x=admin")), live(realm, "user=alice", "role_x=user"), 1, true},
		{"a renew_on key added",
			upd("alice", set("role_x=admin")), live(realm, "user=alice"), 1, true},
		{"a renew_on key removed",
			upd("alice", del("role_x")), live(realm, "user=alice", "role_x=admin"), 1, true},
		{"a renew_on key removed in the other spelling",
			upd("alice", del("role-x")), live(realm, "user=alice", "role_x=admin"), 0, true},
		{"persistence switched off",
			with(upd("alice", asking(session.RememberOff, set("cart=1"))), func(u *Update) { u.Timeouts = rememberTimeouts }), remembered, 1, true},
		{"persistence switched on",
			upd("alice", asking(session.RememberOn, set("cart=1"))), live(realm, "user=alice"), 1, true},
		{"a renew_on key set to what the session holds",
			upd("alice", set("role_x=user", "cart=1")), live(realm, "user=alice", "role_x=user"), 1, false},
		{"a renew_on key removed that the session lacks",
			upd("alice", del("role_x")), live(realm, "user=alice"), 1, false},
		{"another key", upd("alice", set("cart=1")), live(realm, "user=alice", "role_x=user"), 1, false},
		{"persistence as it is",
			with(upd("alice", asking(session.RememberOn, set("cart=1"))), func(u *Update) { u.Timeouts = rememberTimeouts }), remembered, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := with(tc.u, func(u *Update) { u.RenewOn = renewOn })
			o := Decide(u, hashB, tc.stored, tc.hop)
			if refused := errors.Is(o.Err, ErrNeedsRotation); refused != tc.refused {
				t.Fatalf("ErrNeedsRotation: %v (outcome %+v, %v), want %v", refused, o.Result, o.Err, tc.refused)
			}
			if tc.refused {
				if o.Writes() {
					t.Fatalf("a refused update writes: %+v", o)
				}
				// Given a new ID, it moves the session there.
				u.NewHash = ptr(hashC)
				if o := Decide(u, hashB, tc.stored, tc.hop); o.Err != nil || o.WriteAt != hashC || o.Forward == nil {
					t.Fatalf("with a NewHash: outcome %+v, %v; want the session moved to it", o, o.Err)
				}
			} else if o.Err != nil || !o.InPlace {
				t.Fatalf("outcome %+v, %v; want the update in place", o, o.Err)
			}
			// Without RenewOn, nothing is checked: in place, as before.
			u.RenewOn, u.NewHash = nil, nil
			if o := Decide(u, hashB, tc.stored, tc.hop); o.Err != nil || !o.InPlace {
				t.Fatalf("without RenewOn: outcome %+v, %v; want the update in place", o, o.Err)
			}
		})
	}
}
