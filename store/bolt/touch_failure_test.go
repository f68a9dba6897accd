package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestFailingTouchDoesNotFailTheWrites: the pending touches ride in the
// transaction of the next writers' commit. One that fails there (its
// record unreadable since it was touched) failed that commit for every
// writer, and, still pending, every commit after it: every login a 503
// until a restart. A touch promises the client nothing: it is dropped, and
// the writers' commit is made without it.
func TestFailingTouchDoesNotFailTheWrites(t *testing.T) {
	var reported []error
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, TouchDelay: time.Hour,
		OnTouchError: func(err error) { reported = append(reported, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	if _, err := touch(t, s, h, at); err != nil {
		t.Fatal(err)
	}
	// The record becomes unreadable behind the store's back.
	err = s.db.Update(func(tx *bbolt.Tx) error {
		return buckets(tx).sessions.Put(h[:], []byte{0xff, 0x00, 0x01})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.cache.forget(h)
	for i, name := range []string{"b", "c"} {
		if _, err := s.Update(t.Context(), createUpdate(int64(i), at)); err != nil {
			t.Fatalf("login %s after the failing touch: %v", name, err)
		}
	}
	if n := s.touches.count.Load(); n != 0 {
		t.Fatalf("%d touches still pending: the failing one is kept, and fails every commit", n)
	}
	if len(reported) != 1 {
		t.Fatalf("the dropped touch was reported %d times, want once: %v", len(reported), reported)
	}
}
