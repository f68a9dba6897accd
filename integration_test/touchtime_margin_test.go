package integration_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// afterCrash returns the session of the visitor as a Caddy started on a
// copy of the site's bolt file, taken now, would find it: what a crash
// of the process at this instant leaves (the file holds the commits made
// so far; touches still pending in memory are not in it). nil when the
// session would not open at clock.Now() under timeouts.
func afterCrash(t *testing.T, s *site, v *visitor, timeouts session.Timeouts) *session.Record {
	t.Helper()
	raw, err := os.ReadFile(s.db)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crashed.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(path, bolt.Options{SweepInterval: -1, TouchDelay: -1})
	if err != nil {
		t.Fatalf("opening a copy of the session file: %v", err)
	}
	defer st.Close()
	rec, err := st.Load(t.Context(), session.HashID(v.sid), clock.Now(), timeouts)
	if err != nil {
		return nil
	}
	return rec
}

// TestTouchDurableWhenAnsweredNearTheIdleDeadline: README ("Stores"):
// touches of sessions within a minute of their idle deadline are durable
// before the response is sent, so that a crash cannot end a session in use
// because bolt deferred its touch. A request counts as a use when it
// began, but the response goes out when the app answers: a slow request,
// during which the session came within that minute of its idle deadline
// or passed it (README: a request that answers after the idle deadline
// passed still keeps the session), had its touch deferred, judged by
// when it began; so was a touch of a session near the idle deadline that
// a shortened idle_timeout gives it, judged by the one its record holds.
// A crash in the second after such a response ended, on restart, the
// session its user had just used. Each case checks the bolt file as a
// crash would leave it, right after the response.
func TestTouchDurableWhenAnsweredNearTheIdleDeadline(t *testing.T) {
	const opts = `idle_timeout 10m
		touch_interval 1m`
	normal := session.Timeouts{Idle: 10 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	cases := []struct {
		name string
		// begin is how long after the login the request begins, during
		// how long its app runs.
		begin, during time.Duration
		// reload, if set, is the idle_timeout a reload sets after the
		// login, and timeouts what the session is then judged by.
		reload   string
		timeouts session.Timeouts
	}{
		{"slow request answered within the minute before the idle deadline", 8 * time.Minute, 90 * time.Second, "", normal},
		{"slow request answered after the idle deadline passed", 8 * time.Minute, 3 * time.Minute, "", normal},
		{"request within the minute before a shortened idle deadline", 4*time.Minute + 30*time.Second, 0, "5m",
			session.Timeouts{Idle: 5 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, opts) })
			v := login(t, s, "alice")
			loggedIn := clock.Now()
			if c.reload != "" {
				s.options = "idle_timeout " + c.reload + "\n\t\ttouch_interval 1m"
				s.load()
			}
			clock.Advance(c.begin)
			began := clock.Now()
			slowReq := v.start(g, "slow")
			clock.Advance(c.during)
			res := slowReq.finish(t)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("the request answered %d, want 200", res.StatusCode)
			}
			rec := afterCrash(t, s, v, c.timeouts)
			switch {
			case rec == nil:
				t.Fatalf("a crash right after the response would end the session its user just used: its touch was deferred, "+
					"and the idle deadline the file holds passed %s ago", clock.Now().Sub(loggedIn.Add(c.timeouts.Idle)).Round(time.Second))
			case !rec.LastSeen.After(loggedIn.Add(time.Minute)) || rec.LastSeen.After(began.Add(time.Second)):
				t.Fatalf("a crash right after the response would leave the session last seen at %v (logged in at %v, "+
					"the request began at %v): its touch, answered within a minute of the idle deadline, was deferred",
					rec.LastSeen, loggedIn, began)
			}
			expectUser(t, v, "alice")
		})
	}
}
