package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestTouchNearTheDeadlineWhenAnsweredIsWrittenAtOnce: a touch is written
// before Update returns when the session's idle deadline, as the file
// holds it and as the update's timeouts judge it, is within touchMargin
// of when the touch is answered (Update.Committed), not only of when its
// request began (Update.Now). A request counts as a use when it began,
// but the response goes out at the commit: a slow request whose session
// came within the margin of its idle deadline while the app ran, or passed
// it (README: a request that answers after the idle deadline passed still
// keeps the session), had its touch deferred, and a crash in the second
// after the response ended the session the user had just used, which the
// margin is there to prevent (touch.go; README, "Stores").
func TestTouchNearTheDeadlineWhenAnsweredIsWrittenAtOnce(t *testing.T) {
	shorter := timeouts
	shorter.Idle = 10 * time.Minute // a reload shortened idle_timeout
	cases := []struct {
		name string
		// now and commit are the touch's, after base; to are its timeouts.
		now, commit time.Duration
		to          session.Timeouts
		durable     bool
	}{
		{"answered long before the deadline", 10 * time.Minute, 10*time.Minute + time.Second, timeouts, false},
		{"began and answered before the margin", 28*time.Minute + 59*time.Second, 28*time.Minute + 59*time.Second, timeouts, false},
		{"began before the margin, answered within it", 28 * time.Minute, 29*time.Minute + 30*time.Second, timeouts, true},
		{"began before the margin, answered past the deadline", 28 * time.Minute, 31 * time.Minute, timeouts, true},
		{"began within the margin", 29*time.Minute + 30*time.Second, 29*time.Minute + 31*time.Second, timeouts, true},
		// The file says 30 minutes, the timeouts now 10: the session ends
		// 10 minutes after it was last seen (session.Timeouts.Expired).
		{"within the margin of a shortened idle_timeout", 9*time.Minute + 30*time.Second, 9*time.Minute + 31*time.Second, shorter, true},
		{"far from a shortened idle_timeout", 5 * time.Minute, 5*time.Minute + time.Second, shorter, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openDeferring(t, filepath.Join(t.TempDir(), "sessions.db"))
			defer s.Close()
			h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
			now, commit := base.Add(c.now), base.Add(c.commit)
			res, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Identity: "user",
				Now: now, Commit: commit, Timeouts: c.to, Limits: limits})
			if err != nil {
				t.Fatalf("the touch failed: %v", err)
			}
			if !res.Record.LastSeen.Equal(now) {
				t.Fatalf("the touch answered LastSeen %v, want %v", res.Record.LastSeen, now)
			}
			got := inFile(t, s, h).LastSeen
			switch {
			case c.durable && !got.Equal(now):
				t.Fatalf("a touch answered %s before the idle deadline was deferred: the file holds LastSeen %v, "+
					"so a crash now would end the session at %v, want it written before the answer",
					base.Add(c.to.Idle).Sub(commit), got, base.Add(c.to.Idle))
			case !c.durable && !got.Equal(base):
				t.Fatalf("a touch far from the deadline was written at once (LastSeen %v in the file): it should ride with the next commit", got)
			}
			checkConsistent(t, s)
		})
	}
}
