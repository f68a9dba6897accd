package redis

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestRemember runs the remember-me suite on a single server and on a
// Cluster: a rotation writes the remembered record whole (its
// ":remembered" field and its deadlines), with a TTL to its new idle
// deadline, and the consistency check at each store's close holds the
// keys and index entries to it.
func TestRemember(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		storetest.Remember(t, func(t *testing.T) store.Store {
			s := b.newStore(t, Options{})
			inspector := b.inspector(t, s)
			flush(t, inspector)
			return checkedStore{Store: s, inspector: inspector, t: t}
		})
	})
}

// TestRememberFields: a session remembered under a new ID is a new hash
// with ":remembered" and the remember deadlines, whose TTL runs to the
// remember idle deadline; forgotten, the next hash has neither, and a TTL
// to the normal one.
func TestRememberFields(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		inspector := b.inspector(t, s)
		to := timeouts
		to.RememberIdle, to.RememberAbsolute = 14*24*time.Hour, 30*24*time.Hour
		h := create(t, s, "plain", base, to, map[string]string{"user": "alice"})
		steps := []struct {
			name       string
			remember   session.Remember
			remembered bool
			ttl        time.Duration
			absolute   time.Time
		}{
			{"remembered", session.RememberOn, true, to.RememberIdle, base.Add(to.RememberAbsolute)},
			{"forgotten", session.RememberOff, false, to.Idle, base.Add(to.Absolute)},
		}
		for i, step := range steps {
			next := session.HashID(step.name)
			at := base.Add(time.Duration(i+1) * time.Minute)
			res, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, NewHash: ptr(next),
				Patch: &session.Patch{Remember: step.remember}, Identity: "user", Seen: "alice", Now: at, Timeouts: to, Limits: limits})
			if err != nil || res.Hash != next || res.Record.Remembered != step.remembered {
				t.Fatalf("%s: %+v, %v", step.name, res, err)
			}
			fields := hgetall(t, inspector, s.SessionKey(next))
			if _, ok := fields[fieldRemembered]; ok != step.remembered {
				t.Fatalf("%s: fields %v; want %s: %v", step.name, fields, fieldRemembered, step.remembered)
			}
			if fields[fieldAbsolute] != nanos(step.absolute) || fields[fieldIdle] != nanos(at.Add(step.ttl)) {
				t.Fatalf("%s: deadlines %s, %s; want %s, %s", step.name, fields[fieldIdle], fields[fieldAbsolute], nanos(at.Add(step.ttl)), nanos(step.absolute))
			}
			within(t, step.name+": TTL", pttl(t, inspector, s.SessionKey(next)), step.ttl+store.ExpiryGrace)
			h = next
		}
		checkConsistent(t, inspector)
	})
}
