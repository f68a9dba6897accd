package bolt

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// TestGroupCommit has many writers at once, some failing and one
// panicking, and checks that each gets its own result and that exactly the
// successful writes are in the file.
func TestGroupCommit(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	bucket := []byte("group-commit-test")
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const writers = 200
	errBad := errors.New("refused")
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.write(func(tx *bbolt.Tx) error {
				// Written before failing: the rollback must undo it.
				if err := tx.Bucket(bucket).Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
				switch {
				case i == 77:
					panic("a bug in a writer")
				case i%10 == 3:
					return errBad
				}
				return nil
			})
		}()
	}
	wg.Wait()
	stored := map[string]bool{}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			stored[string(k)] = true
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		key := fmt.Sprintf("k%03d", i)
		switch {
		case i == 77:
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Errorf("writer %d panicked and got %v", i, err)
			}
		case i%10 == 3:
			if !errors.Is(err, errBad) {
				t.Errorf("writer %d failed and got %v", i, err)
			}
		default:
			if err != nil {
				t.Errorf("writer %d got %v", i, err)
			}
		}
		if want := err == nil; stored[key] != want {
			t.Errorf("writer %d: stored %v, want %v", i, stored[key], want)
		}
	}
	// The queue is free again.
	if err := s.write(func(*bbolt.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if s.commits.writing || len(s.commits.queue) != 0 {
		t.Fatalf("the queue was left busy: writing %v, %d queued", s.commits.writing, len(s.commits.queue))
	}
}

// TestGroupCommitClosed: writes to a closed store fail, and do not hang.
func TestGroupCommitClosed(t *testing.T) {
	s := openTest(t)
	s.Close()
	for range 3 {
		if err := s.write(func(*bbolt.Tx) error { return nil }); !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			t.Fatalf("write to a closed store: %v", err)
		}
	}
}

// TestGroupCommitOnOneP: with one P, as on a one-CPU machine, writers that
// are ready to run when a leader starts its commit join it, instead of the
// leader committing alone and the others waiting for the next fsync. On
// one P the interleaving is the scheduler's and deterministic: the leader
// runs first, and the others only when it yields.
func TestGroupCommitOnOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := openTest(t)
	defer s.Close()
	const writers = 20
	txIDs := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := s.write(func(tx *bbolt.Tx) error {
				txIDs[i] = tx.ID()
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	slices.Sort(txIDs)
	if txs := slices.Compact(txIDs); len(txs) != 1 {
		t.Fatalf("%d writers ready at once took %d transactions (%v), want one", writers, len(txs), txs)
	}
}

// TestWriteReturnsAfterTheCommit: no writer of a group, leader or
// follower, returns before the group's transaction has committed, which
// with fsync on (the default) includes bbolt's fsyncs: tx.OnCommit runs
// after them.
func TestWriteReturnsAfterTheCommit(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	if s.db.NoSync {
		t.Fatal("the test store syncs nothing: this test needs fsync on")
	}
	const writers = 50
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			var committed atomic.Bool
			err := s.write(func(tx *bbolt.Tx) error {
				committed.Store(false) // a rerun starts again
				tx.OnCommit(func() { committed.Store(true) })
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			if !committed.Load() {
				t.Errorf("writer %d returned before its transaction committed", i)
			}
		})
	}
	wg.Wait()
}
