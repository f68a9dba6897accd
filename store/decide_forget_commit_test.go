package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideForgetAppliedAfterTheNormalAbsoluteDeadline: X-Session-Remember:
// false from a request that began (Now) before the normal absolute deadline
// of its remembered session and is applied (Commit) at or after it. The
// session it returns to the normal timeouts has outlived them when the
// update is applied: it ends (Result.Expired), as the stored record would
// if the request had found it so, and no record is written under the new
// hash already past its absolute deadline. Applied before the deadline,
// or with no Commit, the session moves to the new hash on the normal
// timeouts; in place, or past nothing, it is untouched by this rule.
func TestDecideForgetAppliedAfterTheNormalAbsoluteDeadline(t *testing.T) {
	end := t0.Add(rememberTimeouts.Absolute) // the normal absolute deadline
	began := end.Add(-30 * time.Second)
	stored := func() *session.Record { return kept(began.Add(-time.Minute), "user=alice") }
	forget := func(p *session.Patch) Update {
		return rememberUpd(began, ptr(hashC), asking(session.RememberOff, p))
	}
	updates := []struct {
		name string
		u    Update
	}{
		{"a forget", forget(nil)},
		{"a forget with a key", forget(set("cart=1"))},
		{"a forget with a renewal", forget(&session.Patch{Renew: true})},
		{"a forget without a touch", untouched(forget(nil))},
	}
	for _, c := range updates {
		for _, at := range []struct {
			name   string
			commit time.Time
			ends   bool
		}{
			{"applied after it", end.Add(30 * time.Second), true},
			{"applied at it", end, true},
			{"applied before it", end.Add(-time.Second), false},
			{"applied when it began", time.Time{}, false},
		} {
			t.Run(c.name+", "+at.name, func(t *testing.T) {
				u := with(c.u, func(u *Update) { u.Commit = at.commit })
				for _, hop := range []int{0, 1} {
					where := hashA
					if hop > 0 {
						where = hashB
					}
					o := Decide(u, where, stored(), hop)
					if at.ends {
						if o.Err != nil || !o.Remove || o.Write != nil || o.Forward != nil ||
							!reflect.DeepEqual(o.Result, Result{Acted: where, Expired: true, Followed: hop > 0}) {
							t.Fatalf("hop %d: %+v, %v; want the session removed, nothing written and Result.Expired", hop, o.Result, o.Err)
						}
						continue
					}
					switch r := o.Write; {
					case o.Err != nil:
						t.Fatalf("hop %d: %v; want the forget applied", hop, o.Err)
					case r == nil || o.WriteAt != hashC || r.Remembered || o.Result.Expired:
						t.Fatalf("hop %d: %+v; want the session moved to the new hash, not remembered", hop, o)
					case !r.AbsoluteDeadline.Equal(end):
						t.Fatalf("hop %d: absolute deadline +%v, want +%v", hop, r.AbsoluteDeadline.Sub(t0), end.Sub(t0))
					case o.Forward == nil || o.Forward.ExpiresAt().After(r.ExpiresAt()):
						t.Fatalf("hop %d: forward record %+v, want one that ends with the session", hop, o.Forward)
					}
				}
			})
		}
	}
}
