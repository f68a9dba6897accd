package bolt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// openDeferring opens a store whose deferred touches wait for a commit or
// for the test: its timer would fire only after an hour.
func openDeferring(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{SweepInterval: -1, TouchDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inFile reads the record under h straight from the file, as a restart
// would find it: nil when there is none.
func inFile(t *testing.T, s *Store, h session.Hash) *session.Record {
	t.Helper()
	var rec *session.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		rec, _, err = buckets(tx).get(h)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func touch(t *testing.T, s *Store, h session.Hash, now time.Time) (store.Result, error) {
	t.Helper()
	return s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Identity: "user", Now: now, Timeouts: timeouts, Limits: limits})
}

// TestTouchIsDeferred: a touch is answered and shown by Load at once, but
// written only by the next commit, here the timer's.
func TestTouchIsDeferred(t *testing.T) {
	s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	res, err := touch(t, s, h, at)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Record.LastSeen.Equal(at) || res.Hash != h {
		t.Fatalf("the touch answered LastSeen %v under %s, want %v under %s", res.Record.LastSeen, res.Hash.Short(), at, h.Short())
	}
	if got := inFile(t, s, h).LastSeen; !got.Equal(base) {
		t.Fatalf("the touch was written at once: LastSeen %v in the file", got)
	}
	// Past the idle deadline the file holds, within the touched one.
	later := base.Add(35 * time.Minute)
	rec, err := s.Load(t.Context(), h, later, timeouts)
	if err != nil {
		t.Fatalf("Load past the written deadline, within the touched one: %v", err)
	}
	if !rec.LastSeen.Equal(at) || !rec.IdleDeadline.Equal(at.Add(timeouts.Idle)) {
		t.Fatalf("Load showed LastSeen %v, IdleDeadline %v; want the touch's", rec.LastSeen, rec.IdleDeadline)
	}
	s.flushLater()
	if got := inFile(t, s, h); !got.LastSeen.Equal(at) || !got.IdleDeadline.Equal(at.Add(timeouts.Idle)) {
		t.Fatalf("after the flush the file holds LastSeen %v, IdleDeadline %v", got.LastSeen, got.IdleDeadline)
	}
	if n := s.touches.count.Load(); n != 0 {
		t.Fatalf("%d touches still pending after the flush", n)
	}
	checkConsistent(t, s)
}

// TestDeferredTouchRidesWithTheNextCommit: a write of another session
// writes the pending touch in its transaction.
func TestDeferredTouchRidesWithTheNextCommit(t *testing.T) {
	s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	if _, err := touch(t, s, h, at); err != nil {
		t.Fatal(err)
	}
	create(t, s, "b", at, timeouts, map[string]string{"user": "bob"})
	if got := inFile(t, s, h).LastSeen; !got.Equal(at) {
		t.Fatalf("the login's commit left the touch out: LastSeen %v in the file", got)
	}
	if n := s.touches.count.Load(); n != 0 {
		t.Fatalf("%d touches still pending", n)
	}
}

// TestDeferredTouchAfterTheSessionMovedOn: whatever happens to a session
// between its touch and the commit that writes it, the touch brings
// nothing back and moves no deadline back. Each case ends the session,
// moves it on or writes it later, then the pending touch is written.
func TestDeferredTouchAfterTheSessionMovedOn(t *testing.T) {
	at := base.Add(10 * time.Minute)
	later := at.Add(time.Second)
	cases := []struct {
		name  string
		event func(t *testing.T, s *Store, h session.Hash)
		check func(t *testing.T, s *Store, h session.Hash)
	}{
		{"logout", func(t *testing.T, s *Store, h session.Hash) {
			if err := s.Delete(t.Context(), h); err != nil {
				t.Fatal(err)
			}
		}, gone},
		{"destroy", func(t *testing.T, s *Store, h session.Hash) {
			mustUpdate(t, s, store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Destroy: true}, Now: later})
		}, gone},
		{"revoke", func(t *testing.T, s *Store, h session.Hash) {
			if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
				t.Fatalf("DeleteByIdentity = %d, %v", n, err)
			}
		}, gone},
		{"rotation", func(t *testing.T, s *Store, h session.Hash) {
			mustUpdate(t, s, store.Update{Hash: h, HasHash: true, NewHash: ptr(session.HashID("a2")), Now: later})
		}, func(t *testing.T, s *Store, h session.Hash) {
			if rec := inFile(t, s, h); rec == nil || !rec.Forwarded() || !rec.LastSeen.Equal(later) {
				t.Fatalf("the forward record was changed: %+v", rec)
			}
			if rec := inFile(t, s, session.HashID("a2")); !rec.LastSeen.Equal(later) {
				t.Fatalf("the successor's LastSeen is %v, want the rotation's %v", rec.LastSeen, later)
			}
		}},
		{"remembered", func(t *testing.T, s *Store, h session.Hash) {
			mustUpdate(t, s, store.Update{Hash: h, HasHash: true, NewHash: ptr(session.HashID("a2")),
				Patch: &session.Patch{Remember: session.RememberOn}, Now: later})
		}, func(t *testing.T, s *Store, h session.Hash) {
			rec := inFile(t, s, session.HashID("a2"))
			want := rec.Clone()
			timeouts.SetRemembered(want, true)
			timeouts.Touch(want, later)
			if !rec.Remembered || !rec.LastSeen.Equal(later) || !rec.IdleDeadline.Equal(want.IdleDeadline) || !rec.AbsoluteDeadline.Equal(want.AbsoluteDeadline) {
				t.Fatalf("the remembered successor is %+v, want remembered, seen at %v, deadlines %v and %v", rec, later, want.IdleDeadline, want.AbsoluteDeadline)
			}
		}},
		{"flash taken", func(t *testing.T, s *Store, h session.Hash) {
			mustUpdate(t, s, store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Flash: map[string]string{"notice": "Saved"}}, Now: later})
			mustUpdate(t, s, store.Update{Hash: h, HasHash: true, TakeFlash: true, NoTouch: true, Now: later.Add(time.Second)})
		}, func(t *testing.T, s *Store, h session.Hash) {
			if rec := inFile(t, s, h); rec.Flash != nil {
				t.Fatalf("the flash value taken came back: %v", rec.Flash)
			}
		}},
		{"a slower write, which began before the touch", func(t *testing.T, s *Store, h session.Hash) {
			mustUpdate(t, s, store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "apple"}}, Now: at.Add(-5 * time.Minute)})
		}, func(t *testing.T, s *Store, h session.Hash) {
			if rec := inFile(t, s, h); !rec.LastSeen.Equal(at) || !rec.IdleDeadline.Equal(at.Add(timeouts.Idle)) || rec.Values["cart"] != "apple" {
				t.Fatalf("the slower write moved the touch's LastSeen back to %v (idle deadline %v)", rec.LastSeen, rec.IdleDeadline)
			}
		}},
		{"a later write", func(t *testing.T, s *Store, h session.Hash) {
			// Written with touches left out, as if it had committed
			// between the touch's answer and its write.
			err := s.db.Update(func(tx *bbolt.Tx) error {
				_, err := update(buckets(tx), store.Update{Hash: h, HasHash: true, Identity: "user",
					Patch: &session.Patch{Set: map[string]string{"cart": "apple"}}, Now: later, Timeouts: timeouts, Limits: limits})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, s *Store, h session.Hash) {
			if rec := inFile(t, s, h); !rec.LastSeen.Equal(later) || rec.Values["cart"] != "apple" {
				t.Fatalf("the earlier touch moved the later write's LastSeen back to %v", rec.LastSeen)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
			defer s.Close()
			h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
			if _, err := touch(t, s, h, at); err != nil {
				t.Fatal(err)
			}
			c.event(t, s, h)
			s.flushLater()
			c.check(t, s, h)
			checkConsistent(t, s)
		})
	}
}

func gone(t *testing.T, s *Store, h session.Hash) {
	t.Helper()
	if rec := inFile(t, s, h); rec != nil {
		t.Fatalf("the pending touch brought an ended session back: %+v", rec)
	}
	if _, err := s.Load(t.Context(), h, base.Add(11*time.Minute), timeouts); err != store.ErrNotFound {
		t.Fatalf("Load of an ended session with a touch pending: %v", err)
	}
}

func mustUpdate(t *testing.T, s *Store, u store.Update) {
	t.Helper()
	u.Identity, u.Timeouts, u.Limits = "user", timeouts, limits
	if _, err := s.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

// TestTouchNearTheDeadlineIsWrittenAtOnce: a session within touchMargin
// of its idle deadline is not left to a crash.
func TestTouchNearTheDeadlineIsWrittenAtOnce(t *testing.T) {
	s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(timeouts.Idle - touchMargin + time.Second)
	if _, err := touch(t, s, h, at); err != nil {
		t.Fatal(err)
	}
	if got := inFile(t, s, h).LastSeen; !got.Equal(at) {
		t.Fatalf("a touch %s before the deadline was deferred: LastSeen %v in the file", touchMargin-time.Second, got)
	}
}

// TestPendingTouchesBeforeReadsOfTheIndex: Count, List and the sweeper
// read deadlines from the file; they see the pending touches written
// first, so a touched session is neither missed nor swept.
func TestPendingTouchesBeforeReadsOfTheIndex(t *testing.T) {
	afterWritten := base.Add(35 * time.Minute) // past the file's deadline, before the touched one
	cases := map[string]func(t *testing.T, s *Store) int{
		"count": func(t *testing.T, s *Store) int {
			n, err := s.Count(t.Context(), afterWritten)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
		"list": func(t *testing.T, s *Store) int {
			entries, _, err := s.List(t.Context(), "", 10, afterWritten)
			if err != nil {
				t.Fatal(err)
			}
			return len(entries)
		},
		"sweep": func(t *testing.T, s *Store) int {
			if _, err := s.Sweep(afterWritten); err != nil {
				t.Fatal(err)
			}
			if inFile(t, s, session.HashID("a")) == nil {
				return 0
			}
			return 1
		},
	}
	for name, read := range cases {
		t.Run(name, func(t *testing.T) {
			s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
			defer s.Close()
			h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
			if _, err := touch(t, s, h, base.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if n := read(t, s); n != 1 {
				t.Fatalf("%s found %d sessions, want the touched one", name, n)
			}
		})
	}
}

// TestCloseWritesPendingTouches: a clean stop (a reload, a restart) loses
// no touch.
func TestCloseWritesPendingTouches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s := openDeferring(t, path)
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	if _, err := touch(t, s, h, at); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDeferring(t, path)
	defer s.Close()
	if got := inFile(t, s, h).LastSeen; !got.Equal(at) {
		t.Fatalf("after a restart LastSeen is %v, want the touch's %v", got, at)
	}
}

// TestTouchDelayNegativeWritesAtOnce: the option that turns deferral off.
func TestTouchDelayNegativeWritesAtOnce(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, TouchDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	if _, err := touch(t, s, h, at); err != nil {
		t.Fatal(err)
	}
	if got := inFile(t, s, h).LastSeen; !got.Equal(at) {
		t.Fatalf("TouchDelay -1 deferred the touch: LastSeen %v in the file", got)
	}
}

// TestDeferredTouchStampsTheRealm: a touch of a session stored before
// realms stamps the handler's realm, as a written one does, and Load shows
// it at once.
func TestDeferredTouchStampsTheRealm(t *testing.T) {
	s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	at := base.Add(10 * time.Minute)
	if _, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Identity: "user", Realm: "shop", Now: at, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatal(err)
	}
	if got := inFile(t, s, h).Realm; got != "" {
		t.Fatalf("the touch was written at once: realm %q in the file", got)
	}
	if got := mustLoad(t, s, h).Realm; got != "shop" {
		t.Fatalf("Load showed realm %q, want the touch's shop", got)
	}
	s.flushLater()
	if got := inFile(t, s, h); got.Realm != "shop" || !got.LastSeen.Equal(at) {
		t.Fatalf("after the flush the file holds realm %q, LastSeen %v", got.Realm, got.LastSeen)
	}
}

// TestOnlyTimesMoved: the guard that keeps anything but a touch from being
// deferred, whichever field of an update asked for the change.
func TestOnlyTimesMoved(t *testing.T) {
	before := timeouts.NewRecord(base)
	before.Values = map[string]string{"user": "alice"}
	cases := []struct {
		name   string
		change func(r *session.Record)
		want   bool
	}{
		{"a touch", func(r *session.Record) { timeouts.Touch(r, base.Add(time.Minute)) }, true},
		{"the realm stamped on a record of none", func(r *session.Record) { r.Realm = "shop" }, true},
		{"a key", func(r *session.Record) { r.Values["cart"] = "apple" }, false},
		{"a value", func(r *session.Record) { r.Values["user"] = "bob" }, false},
		{"a flash value", func(r *session.Record) { r.Flash = map[string]string{"notice": "saved"} }, false},
		{"remembered", func(r *session.Record) { r.Remembered = true }, false},
		{"the absolute deadline", func(r *session.Record) { r.AbsoluteDeadline = r.AbsoluteDeadline.Add(time.Hour) }, false},
		{"the user agent", func(r *session.Record) { r.UserAgent = "curl" }, false},
		{"the client network", func(r *session.Record) { r.ClientNet = "10.0.0.0/8" }, false},
		{"a forward record", func(r *session.Record) { h := session.HashID("next"); r.Successor = &h }, false},
	}
	for _, c := range cases {
		after := before.Clone()
		c.change(after)
		if got := onlyTimesMoved(before, after); got != c.want {
			t.Errorf("%s: onlyTimesMoved = %v, want %v", c.name, got, c.want)
		}
	}
	stamped := before.Clone()
	stamped.Realm = "shop"
	other := stamped.Clone()
	other.Realm = "admin"
	if onlyTimesMoved(stamped, other) {
		t.Error("a change of a realm that was set counted as a touch")
	}
}

// TestTouchBacklogKeepsTheExpiryIndexFull: touches pending beyond one
// transaction's worth are written earliest deadline first, so the expiry
// index, filled for keys that come in the order of time, gets them in
// that order across transactions too and keeps its pages full. Taken in
// any order, each transaction's keys fell among the last one's, and split
// full pages into half-empty ones.
func TestTouchBacklogKeepsTheExpiryIndexFull(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{NoSync: true, SweepInterval: -1, TouchDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 4 * maxGroup
	hashes := make([]session.Hash, n)
	for i := range hashes {
		hashes[i] = create(t, s, fmt.Sprint("s", i), base.Add(time.Duration(i)*time.Millisecond), timeouts, map[string]string{"user": fmt.Sprint("u", i)})
	}
	for i, h := range hashes {
		if _, err := touch(t, s, h, base.Add(10*time.Minute+time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.touches.count.Load(); got != n {
		t.Fatalf("%d touches pending, want %d", got, n)
	}
	taken := s.touches.take(maxGroup)
	for _, p := range taken {
		if !p.idle.Before(base.Add(10*time.Minute + maxGroup*time.Millisecond).Add(timeouts.Idle)) {
			t.Fatalf("took a touch of idle deadline %v among the %d earliest", p.idle, maxGroup)
		}
	}
	if err := s.flushTouches(); err != nil {
		t.Fatal(err)
	}
	if got := s.touches.count.Load(); got != 0 {
		t.Fatalf("%d touches still pending", got)
	}
	var stats bbolt.BucketStats
	if err := s.db.View(func(tx *bbolt.Tx) error {
		stats = tx.Bucket(bucketExpiry).Stats()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fill := float64(stats.LeafInuse) / float64(stats.LeafAlloc)
	if stats.KeyN != n || fill < 0.85 {
		t.Fatalf("the expiry index holds %d keys in leaf pages %.0f%% full, want %d keys and at least 85%%", stats.KeyN, 100*fill, n)
	}
}
