package integration_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
		touch_interval 1m
		remember {
			idle_timeout 20m
		}`
	normal := session.Timeouts{Idle: 10 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute,
		RememberIdle: 20 * time.Minute, RememberAbsolute: 30 * 24 * time.Hour}
	shortened := normal
	shortened.Idle = 5 * time.Minute
	cases := []struct {
		name     string
		remember bool // the login asks for remember me
		// begin is how long after the login the request begins, during
		// how long its app runs.
		begin, during time.Duration
		// reload, if set, is the idle_timeout a reload sets after the
		// login, and timeouts what the session is then judged by.
		reload   string
		timeouts session.Timeouts
	}{
		{"slow request answered within the minute before the idle deadline", false, 8 * time.Minute, 90 * time.Second, "", normal},
		{"slow request answered after the idle deadline passed", false, 8 * time.Minute, 3 * time.Minute, "", normal},
		{"slow request of a remembered session answered within the minute before its idle deadline", true, 18 * time.Minute, 90 * time.Second, "", normal},
		{"request within the minute before a shortened idle deadline", false, 4*time.Minute + 30*time.Second, 0, "5m", shortened},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, opts) })
			v := s.visitor()
			login := []string{"X-Session-Set-User: alice"}
			if c.remember {
				login = append(login, "X-Session-Remember: true")
			}
			expectStatus(t, v.get("/login", login...), http.StatusOK)
			loggedIn := clock.Now()
			if c.reload != "" {
				s.options = strings.Replace(opts, "idle_timeout 10m", "idle_timeout "+c.reload, 1)
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
			idle := c.timeouts.Idle
			if c.remember {
				idle = c.timeouts.RememberIdle
			}
			switch {
			case rec == nil:
				t.Fatalf("a crash right after the response would end the session its user just used: its touch was deferred, "+
					"and the idle deadline the file holds passed %s ago", clock.Now().Sub(loggedIn.Add(idle)).Round(time.Second))
			case rec.Remembered != c.remember:
				t.Fatalf("the session is remembered: %v, want %v", rec.Remembered, c.remember)
			case !rec.LastSeen.After(loggedIn.Add(time.Minute)) || rec.LastSeen.After(began.Add(time.Second)):
				t.Fatalf("a crash right after the response would leave the session last seen at %v (logged in at %v, "+
					"the request began at %v): its touch, answered %s before the idle deadline, was deferred",
					rec.LastSeen, loggedIn, began, loggedIn.Add(idle).Sub(clock.Now()).Round(time.Second))
			}
			expectUser(t, v, "alice")
		})
	}
}
