package store

import (
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideReportsASwitchOfPersistence: Result.Remembered says whether
// the update changed the session's persistence, so that the handler tells
// of it once: not for a request that reached, through a forward record, a
// session another request had made remembered already.
func TestDecideReportsASwitchOfPersistence(t *testing.T) {
	on := &session.Patch{Remember: session.RememberOn}
	remembered := live(realm, "user=alice")
	timeouts.SetRemembered(remembered, true)
	for _, tc := range []struct {
		name   string
		u      Update
		stored *session.Record
		hop    int
		want   bool
	}{
		{"remembered", upd("alice", on), live(realm, "user=alice"), 0, true},
		{"already remembered, through a forward record", upd("alice", on), remembered, 1, false},
		{"a renewal", upd("alice", &session.Patch{Renew: true}), live(realm, "user=alice"), 0, false},
		{"started remembered", Update{Patch: &session.Patch{Set: map[string]string{"user": "alice"}, Remember: session.RememberOn},
			Identity: "user", Realm: realm, Now: now, Timeouts: timeouts, Limits: limits}, nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.NewHash = ptr(hashC)
			o := Decide(tc.u, hashA, tc.stored, tc.hop)
			if o.Err != nil || o.Result.Record == nil || o.Result.Remembered != tc.want {
				t.Fatalf("outcome %+v, %v; want Result.Remembered %v", o.Result, o.Err, tc.want)
			}
		})
	}
}
