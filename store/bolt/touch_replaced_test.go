package bolt

import (
	"path/filepath"
	"testing"
	"time"
)

// TestPendingTouchReplacedByALaterOne: a session touched twice before any
// commit keeps one pending touch, the later; the earlier one is never
// written. Load showed the session live through the earlier touch, past
// the idle deadline the file holds, and the later touch was asked for
// then. The commit that writes it must judge the session as Load showed
// it, not by the file alone, which says it expired: otherwise it removes
// a session in use. Pending touches outlive a DefaultTouchDelay when
// commits fail (a full disk) and the timer rearms, or when the clock
// steps forward.
func TestPendingTouchReplacedByALaterOne(t *testing.T) {
	for _, c := range []struct {
		name   string
		commit func(t *testing.T, s *Store)
	}{
		{"by the timer", func(t *testing.T, s *Store) { s.flushLater() }},
		{"by another session's write", func(t *testing.T, s *Store) {
			create(t, s, "other", base.Add(51*time.Minute), timeouts, map[string]string{"user": "bob"})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
			defer s.Close()
			h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
			first, second := base.Add(25*time.Minute), base.Add(50*time.Minute) // the file's idle deadline is base+30m
			for _, at := range []time.Time{first, second} {
				if _, err := s.Load(t.Context(), h, at, timeouts); err != nil {
					t.Fatalf("Load at %v: %v", at.Sub(base), err)
				}
				if _, err := touch(t, s, h, at); err != nil {
					t.Fatalf("touch at %v: %v", at.Sub(base), err)
				}
			}
			c.commit(t, s)
			rec := inFile(t, s, h)
			if rec == nil {
				t.Fatal("the commit of the pending touch removed the session in use")
			}
			if !rec.LastSeen.Equal(second) || !rec.IdleDeadline.Equal(second.Add(timeouts.Idle)) {
				t.Fatalf("the file holds LastSeen %v, IdleDeadline %v; want the later touch's", rec.LastSeen.Sub(base), rec.IdleDeadline.Sub(base))
			}
			if _, err := s.Load(t.Context(), h, second.Add(time.Minute), timeouts); err != nil {
				t.Fatalf("Load after the commit: %v", err)
			}
			checkConsistent(t, s)
		})
	}
}
