package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Workload runs a seeded random mix of every kind of write on s (creations,
// sets over and under the limits, deletes, renewals, destroys with and
// without a new session, touches, deletes by hash and by identity) over
// simulated hours, in three realms (one of them none), through live IDs,
// rotated-away IDs and unknown ones, and returns the simulated time it
// ended at. If housekeeping is not nil, it is one more kind of step, given
// the time (a sweep, for a store that has one). It fails the test on any
// error but ErrNotFound, ErrStale and rule errors, which the mix provokes
// on purpose.
func Workload(t *testing.T, s store.Store, steps int, housekeeping func(now time.Time) error) time.Time {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"alice", "bob", "carol", "dave"}
	realms := []string{"", "shop", "admin"}
	var hashes []session.Hash
	pick := func() session.Hash {
		if len(hashes) == 0 || rng.IntN(10) == 0 {
			return session.HashID(fmt.Sprint("unknown", rng.Int()))
		}
		return hashes[rng.IntN(len(hashes))]
	}
	fresh := func() *session.Hash {
		h := session.HashID(fmt.Sprint("s", rng.Int()))
		hashes = append(hashes, h)
		return &h
	}
	now := base
	for i := range steps {
		now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
		to := timeouts
		if rng.IntN(4) == 0 {
			to.Idle = 2 * time.Minute
		}
		user := users[rng.IntN(len(users))]
		realm := realms[rng.IntN(len(realms))]
		// The request saw the user it names, or no one, as a request
		// through a rotated-away ID may have.
		seen := user
		if rng.IntN(3) == 0 {
			seen = ""
		}
		u := store.Update{Identity: "user", Seen: seen, Realm: realm, Now: now, Timeouts: to, Limits: session.Limits{Keys: 4, SessionSize: 64}}
		var err error
		switch rng.IntN(9) {
		case 0, 1: // create
			u.NewHash = fresh()
			u.Patch = &session.Patch{Set: map[string]string{"user": user, "n": fmt.Sprint(i)}}
		case 2: // set, sometimes over the limits
			u.Hash, u.HasHash = pick(), true
			u.Patch = &session.Patch{Set: map[string]string{"user": user, fmt.Sprint("k", rng.IntN(6)): "v"}}
		case 3: // delete keys
			u.Hash, u.HasHash = pick(), true
			u.Patch = &session.Patch{Delete: []string{"user", "k1"}}
		case 4: // renew
			u.Hash, u.HasHash = pick(), true
			u.NewHash = fresh()
			u.Patch = &session.Patch{Renew: true}
		case 5: // destroy, sometimes starting anew
			u.Hash, u.HasHash = pick(), true
			u.Patch = &session.Patch{Destroy: true}
			if rng.IntN(2) == 0 {
				u.NewHash = fresh()
				u.Patch.Set = map[string]string{"user": user}
			}
		case 6: // touch, sometimes without an identity key
			u.Hash, u.HasHash = pick(), true
			if rng.IntN(3) == 0 {
				u.Identity = ""
			}
		case 7: // delete by hash or by identity
			if rng.IntN(2) == 0 {
				err = s.Delete(t.Context(), pick())
			} else {
				_, err = s.DeleteByIdentity(t.Context(), realm, "user", user)
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("step %d: %v", i, err)
			}
			continue
		case 8:
			if housekeeping != nil {
				if err := housekeeping(now); err != nil {
					t.Fatalf("step %d: housekeeping: %v", i, err)
				}
			}
			continue
		}
		_, err = s.Update(t.Context(), u)
		var re *session.RuleError
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrStale) && !errors.As(err, &re) {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return now
}

// CountMatchesList fails the test unless Count and a full List agree on
// how many sessions are live at now.
func CountMatchesList(t *testing.T, s store.Store, now time.Time) {
	t.Helper()
	n, err := s.Count(t.Context(), now)
	if err != nil {
		t.Fatal(err)
	}
	listed, cursor := 0, ""
	for {
		entries, next, err := s.List(t.Context(), cursor, 50, now)
		if err != nil {
			t.Fatal(err)
		}
		listed += len(entries)
		if next == "" {
			break
		}
		cursor = next
	}
	if listed != n {
		t.Fatalf("List found %d live sessions, Count %d", listed, n)
	}
}
