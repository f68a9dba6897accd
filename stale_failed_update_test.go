package caddysession

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// failingUpdates is a store whose loads answer rec and whose updates
// fail with err: a write that timed out may have been made all the same.
type failingUpdates struct {
	store.Store
	rec *session.Record
	err error
}

func (f *failingUpdates) Load(context.Context, session.Hash, time.Time, session.Timeouts) (*session.Record, error) {
	return f.rec, nil
}

func (f *failingUpdates) Update(context.Context, store.Update) (store.Result, error) {
	return store.Result{}, f.err
}

// TestStaleCopyAfterAFailedUpdate: an update of the session that
// fails with an error that does not say the store made nothing (a
// timeout, a connection lost after the call was sent) may have been made:
// a logout, a key taken away, a renewal. The copy of the session as it
// was before must not be served while the store is down. A touch and the
// take or put-back of flash values change nothing the copy serves, and an
// update the store refused (the session moved on, a rule) made nothing:
// the copy stays.
func TestStaleCopyAfterAFailedUpdate(t *testing.T) {
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	hash := session.HashID("alice's id")
	newHash := session.HashID("alice's next id")
	timeout := fmt.Errorf("redis session store: writing session %s: i/o timeout", hash.Short())

	updates := map[string]func(u *store.Update){
		"logout":     func(u *store.Update) { u.Patch = &session.Patch{Destroy: true} },
		"key set":    func(u *store.Update) { u.Patch = &session.Patch{Set: map[string]string{"role": "user"}} },
		"key delete": func(u *store.Update) { u.Patch = &session.Patch{Delete: []string{"role"}} },
		"renewal":    func(u *store.Update) { u.Patch, u.NewHash = &session.Patch{Renew: true}, &newHash },
		"touch":      func(u *store.Update) {},
		"flash take": func(u *store.Update) { u.TakeFlash, u.NoTouch = true, true },
		"flash back": func(u *store.Update) { u.RestoreFlash, u.NoTouch = map[string]string{"notice": "saved"}, true },
	}
	cases := []struct {
		update string
		err    error
		served bool
	}{
		{"logout", timeout, false},
		{"logout", context.DeadlineExceeded, false},
		{"key set", timeout, false},
		{"key delete", timeout, false},
		{"renewal", timeout, false},
		{"touch", timeout, true},
		{"flash take", timeout, true},
		{"flash back", timeout, true},
		// Refused: nothing was made.
		{"key set", store.ErrStale, true},
		{"key set", fmt.Errorf("wrapped: %w", store.ErrNeedsRotation), true},
		{"key set", &session.RuleError{Reason: "value_size"}, true},
		{"logout", store.ErrNotFound, false}, // ended
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%v", tc.update, tc.err), func(t *testing.T) {
			rec := timeouts.NewRecord(base)
			rec.Values = map[string]string{"user": "alice", "role": "admin"}
			inner := &failingUpdates{rec: rec, err: tc.err}
			c := &staleCopy{cur: newGeneration(), old: newGeneration(), within: 5 * time.Minute}
			s := &staleStore{Store: inner, copy: c, identity: "user", now: func() time.Time { return base }}

			if _, err := s.Load(context.Background(), hash, base, timeouts); err != nil {
				t.Fatal(err)
			}
			u := store.Update{Hash: hash, HasHash: true, Identity: "user", Seen: "alice", Now: base, Commit: base, Timeouts: timeouts}
			updates[tc.update](&u)
			if _, err := s.Update(context.Background(), u); !errors.Is(err, tc.err) {
				t.Fatalf("the update returned %v, want %v", err, tc.err)
			}
			_, served := c.get(hash, "user", timeouts, 5*time.Minute, base.Add(time.Minute))
			if served != tc.served {
				t.Fatalf("after a %s that failed with %q the copy serves the session: %v, want %v", tc.update, tc.err, served, tc.served)
			}
		})
	}
}
