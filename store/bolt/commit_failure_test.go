package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestGroupCommitFailsWhole drives a group commit to fail at an
// exact step: a first writer holds the file's write transaction while a
// group of writers queues behind it (logins, a login of an update Decide
// refuses, a writer whose function fails, one that panics), then the
// commit of that group meets the failure of each case. Every writer must
// get an error when the commit fails, none of their writes may be in the
// file, a pending touch must stay pending (and be written by the next
// commit), and the queue must be free again. When nothing fails, the
// refused, failing and panicking writers must get their own errors only,
// and the logins must all be made.
func TestGroupCommitFailsWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fail makes the group's commit fail, or not (nil); it runs while
		// the group is queued and the file's write lock is held. It
		// returns what undoes it.
		fail    func(t *testing.T, s *Store) (undo func())
		wantErr string // in every writer's error when fail is set
	}{
		{name: "nothing fails"},
		{
			name: "the file is removed while the group waits",
			fail: func(t *testing.T, s *Store) func() {
				moved := s.path + ".moved"
				if err := os.Rename(s.path, moved); err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.Rename(moved, s.path); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantErr: "was removed or replaced while open",
		},
		{
			name: "another file is moved onto the path while the group waits",
			fail: func(t *testing.T, s *Store) func() {
				moved := s.path + ".moved"
				if err := os.Rename(s.path, moved); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(s.path, []byte("a restored backup"), 0o600); err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.Rename(moved, s.path); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantErr: "was removed or replaced while open",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sessions.db")
			s, err := Open(path, Options{SweepInterval: -1, TouchDelay: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			touched := create(t, s, "touched", base, timeouts, map[string]string{"user": "carol"})
			touchAt := base.Add(10 * time.Minute)

			// The first writer holds the write transaction until the group
			// has queued behind it.
			holding, release := make(chan struct{}), make(chan struct{})
			firstErr := make(chan error, 1)
			go func() {
				firstErr <- s.write(func(*bbolt.Tx) error {
					close(holding)
					<-release
					return nil
				})
			}()
			<-holding
			// A touch made while the file is held: it rides with the
			// group's commit, not the first writer's.
			if _, err := touch(t, s, touched, touchAt); err != nil {
				t.Fatal(err)
			}
			if s.touches.count.Load() != 1 {
				t.Fatal("the touch was not deferred: the test needs it pending")
			}

			const logins = 5
			errBad := errors.New("refused by the writer")
			type result struct {
				name string
				err  error
			}
			results := make(chan result, logins+3)
			var wg sync.WaitGroup
			hashes := make([]session.Hash, logins)
			for i := range logins {
				hashes[i] = session.HashID(fmt.Sprint("login-", i))
				wg.Go(func() {
					_, err := s.Update(t.Context(), store.Update{
						NewHash: &hashes[i], Patch: &session.Patch{Set: map[string]string{"user": fmt.Sprint("u", i)}},
						Identity: "user", Now: touchAt, Timeouts: timeouts, Limits: limits,
					})
					results <- result{fmt.Sprint("login-", i), err}
				})
			}
			wg.Go(func() {
				// An update of a session that is not there: Decide refuses it.
				_, err := s.Update(t.Context(), store.Update{
					Hash: session.HashID("nobody"), HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "1"}},
					Identity: "user", Now: touchAt, Timeouts: timeouts, Limits: limits,
				})
				results <- result{"refused", err}
			})
			wg.Go(func() {
				results <- result{"failing", s.write(func(tx *bbolt.Tx) error {
					if err := tx.Bucket(bucketSessions).Put([]byte("half-written"), []byte("x")); err != nil {
						return err
					}
					return errBad
				})}
			})
			wg.Go(func() {
				results <- result{"panicking", s.write(func(tx *bbolt.Tx) error {
					if err := tx.Bucket(bucketSessions).Put([]byte("half-written-too"), []byte("x")); err != nil {
						return err
					}
					panic("a bug in a writer")
				})}
			})
			// Every one of them is queued behind the first writer: no
			// sleep, the queue's length says it.
			for s.commits.queued() != logins+3 {
				// Each writer appends itself under the queue's lock before
				// it waits: spin on that, yielding.
				runtime.Gosched()
			}
			var undo func()
			if tc.fail != nil {
				undo = tc.fail(t, s)
			}
			close(release)
			wg.Wait()
			close(results)
			if err := <-firstErr; err != nil {
				t.Fatalf("the first writer, committed before the failure: %v", err)
			}
			if undo != nil {
				undo()
			}

			for r := range results {
				switch {
				case tc.fail != nil:
					if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
						t.Errorf("%s: got %v, want the commit's failure (%q)", r.name, r.err, tc.wantErr)
					}
				case r.name == "refused":
					if !errors.Is(r.err, store.ErrNotFound) {
						t.Errorf("refused: got %v, want ErrNotFound", r.err)
					}
				case r.name == "failing":
					if !errors.Is(r.err, errBad) {
						t.Errorf("failing: got %v, want its own error", r.err)
					}
				case r.name == "panicking":
					if r.err == nil || !strings.Contains(r.err.Error(), "panicked") {
						t.Errorf("panicking: got %v, want its panic as an error", r.err)
					}
				default:
					if r.err != nil {
						t.Errorf("%s: got %v; a refused, failing or panicking writer beside it must not fail it", r.name, r.err)
					}
				}
			}
			// Nothing half-applied: the logins are all there or none is,
			// and no failing writer's put survived.
			if err := s.db.View(func(tx *bbolt.Tx) error {
				for _, k := range []string{"half-written", "half-written-too"} {
					if tx.Bucket(bucketSessions).Get([]byte(k)) != nil {
						t.Errorf("the put of a failed writer (%s) is in the file", k)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i, h := range hashes {
				_, err := s.Load(t.Context(), h, touchAt, timeouts)
				if tc.fail != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("login %d of a failed commit: Load = %v, want ErrNotFound", i, err)
				}
				if tc.fail == nil && err != nil {
					t.Errorf("login %d: Load = %v", i, err)
				}
			}
			wantPending := int32(0)
			if tc.fail != nil {
				wantPending = 1
			}
			if n := s.touches.count.Load(); n != wantPending {
				t.Fatalf("%d touches pending after the group's commit, want %d", n, wantPending)
			}
			// The queue is free, and the next commit writes the touch.
			create(t, s, "after", touchAt, timeouts, map[string]string{"user": "dave"})
			if s.commits.writing || len(s.commits.queue) != 0 {
				t.Fatalf("the queue was left busy: writing %v, %d queued", s.commits.writing, len(s.commits.queue))
			}
			if got := inFile(t, s, touched).LastSeen; !got.Equal(touchAt) {
				t.Fatalf("the pending touch was lost with the failed commit: LastSeen %v in the file, want %v", got, touchAt)
			}
		})
	}
}
