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
// without a new session, touches, deletes by hash and by identity), one in
// five of them without a touch (Update.NoTouch), over simulated hours, in
// three realms (one of them none), through live IDs, rotated-away IDs and
// unknown ones, and returns the simulated time it ended at. If housekeeping is not nil, it is one more kind of step, given
// the time (a sweep, for a store that has one). It fails the test on any
// error but ErrNotFound, ErrStale and rule errors, which the mix provokes
// on purpose.
func Workload(t *testing.T, s store.Store, steps int, housekeeping func(now time.Time) error) time.Time {
	t.Helper()
	w := &workload{t: t, s: s, rng: rand.New(rand.NewPCG(1, 2)), housekeeping: housekeeping}
	now := base
	for i := range steps {
		now = now.Add(time.Duration(w.rng.IntN(120)) * time.Second)
		w.step(i, now)
	}
	return now
}

// workload is the state of one Workload run.
type workload struct {
	t            *testing.T
	s            store.Store
	rng          *rand.Rand
	hashes       []session.Hash
	housekeeping func(now time.Time) error
}

var (
	workloadUsers  = []string{"alice", "bob", "carol", "dave"}
	workloadRealms = []string{"", "shop", "admin"}
)

// pick returns a hash the run has used, or now and then an unknown one.
func (w *workload) pick() session.Hash {
	if len(w.hashes) == 0 || w.rng.IntN(10) == 0 {
		return session.HashID(fmt.Sprint("unknown", w.rng.Int()))
	}
	return w.hashes[w.rng.IntN(len(w.hashes))]
}

// fresh returns a new hash, which later steps may pick.
func (w *workload) fresh() *session.Hash {
	h := session.HashID(fmt.Sprint("s", w.rng.Int()))
	w.hashes = append(w.hashes, h)
	return &h
}

// step runs one random operation at now.
func (w *workload) step(i int, now time.Time) {
	to := timeouts
	if w.rng.IntN(4) == 0 {
		to.Idle = 2 * time.Minute
	}
	user := workloadUsers[w.rng.IntN(len(workloadUsers))]
	realm := workloadRealms[w.rng.IntN(len(workloadRealms))]
	// The request saw the user it names, or no one, as a request
	// through a rotated-away ID may have.
	seen := user
	if w.rng.IntN(3) == 0 {
		seen = ""
	}
	u := store.Update{Identity: "user", Seen: seen, Realm: realm, Now: now, Timeouts: to, Limits: session.Limits{Keys: 4, SessionSize: 64}}
	// Every fifth step does not touch, chosen without a draw so that the
	// rest of the mix stays as it was.
	u.NoTouch = i%5 == 0
	switch kind := w.rng.IntN(9); kind {
	case 7:
		w.deleteSome(i, realm, user)
		return
	case 8:
		if w.housekeeping != nil {
			if err := w.housekeeping(now); err != nil {
				w.t.Fatalf("step %d: housekeeping: %v", i, err)
			}
		}
		return
	default:
		w.shape(kind, i, user, &u)
	}
	_, err := w.s.Update(w.t.Context(), u)
	var re *session.RuleError
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrStale) && !errors.As(err, &re) {
		w.t.Fatalf("step %d: %v", i, err)
	}
}

// shape makes u the update of one kind of step.
func (w *workload) shape(kind, i int, user string, u *store.Update) {
	switch kind {
	case 0, 1: // create
		u.NewHash = w.fresh()
		u.Patch = &session.Patch{Set: map[string]string{"user": user, "n": fmt.Sprint(i)}}
	case 2: // set, sometimes over the limits
		u.Hash, u.HasHash = w.pick(), true
		u.Patch = &session.Patch{Set: map[string]string{"user": user, fmt.Sprint("k", w.rng.IntN(6)): "v"}}
	case 3: // delete keys
		u.Hash, u.HasHash = w.pick(), true
		u.Patch = &session.Patch{Delete: []string{"user", "k1"}}
	case 4: // renew
		u.Hash, u.HasHash = w.pick(), true
		u.NewHash = w.fresh()
		u.Patch = &session.Patch{Renew: true}
	case 5: // destroy, sometimes starting anew
		u.Hash, u.HasHash = w.pick(), true
		u.Patch = &session.Patch{Destroy: true}
		if w.rng.IntN(2) == 0 {
			u.NewHash = w.fresh()
			u.Patch.Set = map[string]string{"user": user}
		}
	case 6: // touch, sometimes without an identity key
		u.Hash, u.HasHash = w.pick(), true
		if w.rng.IntN(3) == 0 {
			u.Identity = ""
		}
	}
}

// deleteSome deletes a session by hash, or a user's by identity.
func (w *workload) deleteSome(i int, realm, user string) {
	var err error
	if w.rng.IntN(2) == 0 {
		err = w.s.Delete(w.t.Context(), w.pick())
	} else {
		_, err = w.s.DeleteByIdentity(w.t.Context(), realm, "user", user)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.t.Fatalf("step %d: %v", i, err)
	}
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
