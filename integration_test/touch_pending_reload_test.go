package integration_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// TestTouchPendingAcrossAReloadToAnotherFile: a bolt touch is written with
// the next commit or within a second; a reload that moves the site to
// another file closes the old one, which writes the touches still pending
// (README, "Stores": only a crash forgets them). Back on the old file, the
// session lives past the idle deadline its login gave it, by the touch.
func TestTouchPendingAcrossAReloadToAnotherFile(t *testing.T) {
	timeouts := session.Timeouts{Idle: 10 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	s := newSite(t, "idle_timeout 10m\n\t\ttouch_interval 1m")
	first := s.db
	v := login(t, s, "alice")
	clock.Advance(5 * time.Minute)
	used := clock.Now()
	expectUser(t, v, "alice") // a touch 5 minutes from the idle deadline: deferred

	s.store = "store bolt " + filepath.Join(t.TempDir(), "other.db")
	s.load()
	// Opened once the reload has let it go: bbolt's lock waits for that.
	st, err := bolt.Open(first, bolt.Options{SweepInterval: -1, TouchDelay: -1})
	if err != nil {
		t.Fatalf("opening the file the reload left: %v", err)
	}
	rec, err := st.Load(t.Context(), session.HashID(v.sid), clock.Now(), timeouts)
	if cerr := st.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("the file the reload left does not hold the session: %v", err)
	}
	if rec.LastSeen.Before(used) {
		t.Fatalf("the file the reload left holds the session last seen at %v, before its use at %v: the reload lost its pending touch", rec.LastSeen, used)
	}

	expectUser(t, v, "") // not on the other file
	s.store = "store bolt " + first
	s.load()
	clock.Advance(6 * time.Minute) // past the login's idle deadline, before the touch's
	expectUser(t, v, "alice")
}

// TestTouchPendingInTheFallbackStore: a site moved to another bolt file
// with fallback_store naming the old one copies a session from there on
// its first use since. A touch of it made just before the move, pending
// in the old file (written with its next commit or within a second), is
// part of the session copied: past the idle deadline its login gave it,
// within the one the touch gave it, the session opens and is copied.
func TestTouchPendingInTheFallbackStore(t *testing.T) {
	s := newSite(t, "idle_timeout 10m\n\t\ttouch_interval 1m")
	first := s.db
	v := login(t, s, "alice")
	clock.Advance(5 * time.Minute)
	expectUser(t, v, "alice") // a touch 5 minutes from the idle deadline: deferred

	other := filepath.Join(t.TempDir(), "other.db")
	s.store = "store bolt " + other + "\n\t\tfallback_store bolt " + first
	s.load()
	clock.Advance(6 * time.Minute) // past the login's idle deadline, before the touch's
	expectUser(t, v, "alice")
	s.store = "store bolt " + other
	s.load() // the new file alone: the session was copied there
	expectUser(t, v, "alice")
}
