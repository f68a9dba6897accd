package bolt

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

var (
	base     = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	timeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	limits   = session.DefaultLimits()
)

// openTest opens a store in a fresh directory with no background sweeper,
// which would sweep by the real clock the records the tests date in 2025.
func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkedStore checks the file's consistency before it closes, so that
// every test of the conformance suite also checks the indexes it leaves.
type checkedStore struct {
	*Store
	t *testing.T
}

func (c checkedStore) Close() error {
	checkConsistent(c.t, c.Store)
	return c.Store.Close()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return checkedStore{openTest(t), t}
	})
}

// checkConsistent runs bbolt's own check of the file, then checks that the
// indexes hold exactly one entry per record, each the right one, in the
// layout of the record's version and in the short form unless the full
// one is there (index.go).
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		b := buckets(tx)
		want := map[string]map[string]bool{"expiry": {}, "identity": {}}
		expect := func(index string, bucket *bbolt.Bucket, keys entryKeys, h session.Hash) {
			k := keys.in(bucket)
			if want[index][string(k)] {
				t.Errorf("%s entry %x is that of two records, %s among them", index, k, h.Short())
			}
			want[index][string(k)] = true
		}
		err := b.sessions.ForEach(func(k, v []byte) error {
			var h session.Hash
			if len(k) != len(h) {
				return fmt.Errorf("session key %x is not a hash", k)
			}
			copy(h[:], k)
			rec, identity, err := decode(v)
			if err != nil {
				return fmt.Errorf("session %s: %w", h.Short(), err)
			}
			expect("expiry", b.expiry, expiryKeys(rec, h, oldLayout(v)), h)
			if keys, ok := identityKeys(rec, identity, h, oldLayout(v)); ok {
				expect("identity", b.identity, keys, h)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for name, want := range want {
			got := map[string]bool{}
			bucket := tx.Bucket([]byte(name))
			if err := bucket.ForEach(func(k, v []byte) error {
				if len(v) != 0 {
					return fmt.Errorf("%s entry %x has a value", name, k)
				}
				got[string(k)] = true
				return nil
			}); err != nil {
				return err
			}
			for k := range want {
				if !got[k] {
					t.Errorf("%s index lacks entry %x", name, k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("%s index has stale entry %x", name, k)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("checking the file: %v", err)
	}
}

// dump returns every key and value of every bucket.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	all := map[string]string{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				all[string(name)+"/"+string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func bucketLen(t *testing.T, s *Store, name []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(name).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ptr(h session.Hash) *session.Hash { return &h }

func create(t *testing.T, s *Store, name string, now time.Time, to session.Timeouts, values map[string]string) session.Hash {
	t.Helper()
	h := session.HashID(name)
	_, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(h), Patch: &session.Patch{Set: maps.Clone(values)},
		Identity: "user", Now: now, Timeouts: to, Limits: limits,
	})
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	return h
}

func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	first, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := Open(path, Options{LockTimeout: 100 * time.Millisecond, SweepInterval: -1})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second Open of a locked file succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not say the file %s is locked", err, path)
	}
	if elapsed > 5*time.Second {
		t.Errorf("the second Open took %s to give up", elapsed)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the holder is gone, the file opens.
	third, err := Open(path, Options{LockTimeout: 100 * time.Millisecond, SweepInterval: -1})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	third.Close()
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "sessions.db")
	s, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// The umask can only take permissions away.
		if perm := fi.Mode().Perm(); perm&^want != 0 {
			t.Errorf("%s has mode %o, want at most %o", p, perm, want)
		}
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("Open with no path succeeded")
	}
}

func TestSweep(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
	var expired []session.Hash
	for i := range 3 {
		expired = append(expired, create(t, s, fmt.Sprint("short", i), base, short, map[string]string{"user": "alice"}))
	}
	live := []session.Hash{
		create(t, s, "live-alice", base, timeouts, map[string]string{"user": "alice"}),
		create(t, s, "live-anon", base, timeouts, map[string]string{"cart": "3"}),
	}
	if n, err := s.Sweep(base.Add(30 * time.Second)); err != nil || n != 0 {
		t.Fatalf("Sweep before any expiry = %d, %v; want 0", n, err)
	}
	n, err := s.Sweep(base.Add(5 * time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("Sweep = %d, %v; want 3", n, err)
	}
	for _, h := range live {
		if _, err := s.Load(t.Context(), h, base.Add(5*time.Minute), timeouts); err != nil {
			t.Errorf("live session %s after Sweep: %v", h.Short(), err)
		}
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		for _, h := range expired {
			if tx.Bucket(bucketSessions).Get(h[:]) != nil {
				t.Errorf("expired session %s is still stored", h.Short())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := bucketLen(t, s, bucketSessions); got != 2 {
		t.Errorf("%d sessions left, want 2", got)
	}
	if got := bucketLen(t, s, bucketExpiry); got != 2 {
		t.Errorf("%d expiry entries left, want 2", got)
	}
	if got := bucketLen(t, s, bucketIdentity); got != 1 {
		t.Errorf("%d identity entries left, want 1 (live-alice)", got)
	}
	checkConsistent(t, s)
	if n, err := s.Sweep(base.Add(5 * time.Minute)); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	if n, err := s.Sweep(base.Add(24 * time.Hour)); err != nil || n != 2 {
		t.Fatalf("Sweep after everything expired = %d, %v; want 2", n, err)
	}
	checkConsistent(t, s)
}

func TestSweepManyBatches(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const expired, live = 2*sweepBatch + 17, 5
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
	for i := range expired {
		// Spread the deadlines so that the batches cut across them.
		create(t, s, fmt.Sprint("e", i), base.Add(time.Duration(i)*time.Millisecond), short, map[string]string{"user": fmt.Sprint(i % 7)})
	}
	for i := range live {
		create(t, s, fmt.Sprint("l", i), base, timeouts, map[string]string{"user": "bob"})
	}
	n, err := s.Sweep(base.Add(10 * time.Minute))
	if err != nil || n != expired {
		t.Fatalf("Sweep = %d, %v; want %d", n, err, expired)
	}
	if c, err := s.Count(t.Context(), base); err != nil || c != live {
		t.Fatalf("Count = %d, %v; want %d", c, err, live)
	}
	checkConsistent(t, s)
}

func TestSweepStaleEntries(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	// Expiry entries that do not match the record, and ones without a
	// record, as a crash of an older version might have left: the sweep
	// drops them and keeps the live record.
	var orphan session.Hash
	orphan[0] = 1
	early := &session.Record{IdleDeadline: base.Add(time.Minute), AbsoluteDeadline: base.Add(time.Minute)}
	earlyForward := early.Clone()
	earlyForward.Successor = &orphan
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := buckets(tx)
		var keys [][]byte
		for _, rec := range []*session.Record{early, earlyForward} {
			for _, hash := range []session.Hash{h, orphan} {
				k := expiryKeys(rec, hash, false)
				keys = append(keys, k.short, k.full)
			}
		}
		for _, k := range keys {
			if err := b.expiry.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(base.Add(5 * time.Minute)); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want 0", n, err)
	}
	if _, err := s.Load(t.Context(), h, base.Add(5*time.Minute), timeouts); err != nil {
		t.Fatalf("the live session after Sweep: %v", err)
	}
	checkConsistent(t, s)
}

func TestBackgroundSweeper(t *testing.T) {
	swept := make(chan int, 100)
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{
		SweepInterval: time.Millisecond,
		Now:           func() time.Time { return base.Add(time.Hour) },
		OnSweep: func(n int, err error) {
			if err != nil {
				t.Errorf("background sweep: %v", err)
			}
			swept <- n
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	deadline := time.After(10 * time.Second)
	for removed := 0; removed < 1; {
		select {
		case n := <-swept:
			removed += n
		case <-deadline:
			t.Fatal("the background sweeper removed nothing in 10s")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the sweeper: no sweep runs after it.
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice", "cart": "3"})
	want, err := s.Load(t.Context(), h, base, timeouts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Load(t.Context(), h, base.Add(time.Minute), timeouts)
	if err != nil {
		t.Fatalf("Load after reopening: %v", err)
	}
	if !sameRecord(got, want) {
		t.Fatalf("after reopening: %+v, want %+v", got, want)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity after reopening = %d, %v; want 1", n, err)
	}
}

func TestRuleErrorWritesNothing(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	old := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	before := dump(t, s)
	_, err := s.Update(t.Context(), store.Update{
		Hash: old, HasHash: true, NewHash: ptr(session.HashID("b")),
		Patch:    &session.Patch{Renew: true, Set: map[string]string{"user": "bob", "a": "1"}},
		Identity: "user", Now: base.Add(5 * time.Minute), Timeouts: timeouts,
		Limits: session.Limits{Keys: 1},
	})
	var re *session.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("Update = %v, want a RuleError", err)
	}
	if after := dump(t, s); !maps.Equal(before, after) {
		t.Fatalf("a refused update changed the file:\nbefore %q\nafter  %q", before, after)
	}
}

func TestCorruptRecord(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	h := session.HashID("corrupt")
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Put(h[:], []byte{codecVersion, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(t.Context(), h, base, timeouts); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of a corrupt record = %v, want a corruption error", err)
	}
	if _, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Now: base, Timeouts: timeouts}); err == nil {
		t.Fatal("Update of a corrupt record succeeded")
	}
	// Delete is the way out.
	if err := s.Delete(t.Context(), h); err != nil {
		t.Fatalf("Delete of a corrupt record: %v", err)
	}
	checkConsistent(t, s)
}

func TestListBadCursor(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	if _, _, err := s.List(t.Context(), "not-a-cursor", 10, base); err == nil {
		t.Fatal("List with a bad cursor succeeded")
	}
	if _, _, err := s.List(t.Context(), "", 0, base); err == nil {
		t.Fatal("List with limit 0 succeeded")
	}
}

// TestWorkloadConsistent runs a random mix of every kind of write, then
// checks the file with bbolt's consistency check and the index invariants.
func TestWorkloadConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: a long random workload in one goroutine, which -race adds nothing to")
	}
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := storetest.Workload(t, s, 2000, func(now time.Time) error {
		_, err := s.Sweep(now)
		return err
	})
	checkConsistent(t, s)
	storetest.CountMatchesList(t, s, now)
	if _, err := s.Sweep(now.Add(24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{bucketSessions, bucketExpiry, bucketIdentity} {
		if got := bucketLen(t, s, b); got != 0 {
			t.Errorf("bucket %s has %d entries after everything expired", b, got)
		}
	}
	checkConsistent(t, s)
}

// TestSetNoSync: the setting reaches bbolt, which reads it in each
// commit, and NoSync reports it.
func TestSetNoSync(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range []bool{false, true, false} {
		if err := s.SetNoSync(want); err != nil {
			t.Fatal(err)
		}
		if s.NoSync() != want || s.db.NoSync != want {
			t.Fatalf("after SetNoSync(%v): NoSync() = %v, bbolt's NoSync = %v", want, s.NoSync(), s.db.NoSync)
		}
	}
}
