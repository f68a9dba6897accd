package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// A write that times out may still reach Redis (README, "When Redis is
// down"): the client gets a 503, and the change is there once Redis runs
// it. Under `on_store_error stale`, the copy this Caddy kept of the
// session before that write must not be served when Redis then goes
// down: a logout the store made would be undone for the outage, a
// privilege taken away handed back, an ID renewed away opened again.

// untilStored waits for Redis, resumed, to run the write it was sent
// while stopped (key's contents are no longer was), and reports whether
// it did. It may not: a client that gave up on the connection while the
// server was stopped can have its unread command dropped with it.
func untilStored(t *testing.T, srv *redistest.Server, key, was string) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, err := srv.Do("DUMP", key)
		if err != nil {
			t.Fatalf("reading %s from redis: %v", key, err)
		}
		if now != was {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func TestStaleAfterAWriteThatTimedOutButLanded(t *testing.T) {
	slow(t, "waiting out a Redis read_timeout, then for Caddy to see Redis stop")
	cases := []struct {
		name     string
		login    []string // commands of the login
		commands []string // the write whose answer times out
	}{
		{"logout", []string{"X-Session-Set-User: alice"}, []string{"X-Session-Destroy: true"}},
		{"privilege taken away", []string{"X-Session-Set-User: alice", "X-Session-Set-Role: admin"}, []string{"X-Session-Set-Role: user"}},
		{"key deleted", []string{"X-Session-Set-User: alice", "X-Session-Set-Role: admin"}, []string{"X-Session-Delete: role"}},
		{"renewal", []string{"X-Session-Set-User: alice"}, []string{"X-Session-Renew: true"}},
		{"login as another user", []string{"X-Session-Set-User: alice"}, []string{"X-Session-Set-User: bob"}},
		// (A logout everywhere ends the user's sessions through
		// DeleteByIdentity, which the copy tombstones before and after
		// the call, failed or not; and it reads the session afresh
		// first, which a stopped Redis does not answer.)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			s, logFile := loggedSite(t, redisWithTimeouts(srv), "on_store_error stale 5m")
			alice := s.visitor()
			expectStatus(t, alice.get("/login", tc.login...), http.StatusOK)
			before := alice.get("/").session() // read into the copy
			if before["X-Session-User"] != "alice" {
				t.Fatalf("after the login the app saw %v", before)
			}
			// Read again, into the client's cache: the invalidation of the
			// login's write may have dropped the first read from it.
			alice.get("/style.css")
			sid := alice.sid
			key := "caddy-session:{" + alice.adminHash() + "}"
			was, err := srv.Do("DUMP", key)
			if err != nil {
				t.Fatal(err)
			}

			// The session is read from the client's cache; the write is
			// sent to the stopped server and its answer times out.
			srv.Pause()
			r := alice.get("/change", tc.commands...)
			srv.Resume()
			expectStatus(t, r, http.StatusServiceUnavailable)
			for _, l := range readLog(t, logFile) {
				if l.str("level") == "error" && strings.Contains(l.str("error"), "reading session") {
					t.Fatalf("the session was not read from the client's cache while redis was stopped, so nothing was written: %s", l.raw)
				}
			}
			if !untilStored(t, srv, key, was) {
				// Not made after all: the copy must still not serve the
				// session, since the store could not say so at the time.
				t.Logf("the write sent to the stopped redis-server was not made after it resumed; checking the copy all the same")
			}

			srv.Stop()
			untilStoreDown(t, s, logFile)
			alice.sid = sid // the cookie the browser still has: the 503 set none
			r = alice.get("/")
			if r.StatusCode == http.StatusOK && len(r.session()) > 0 {
				t.Fatalf("the store made the write (%v), yet while it is down the copy served the session as it was before: %v",
					tc.commands, r.session())
			}
			expectStatus(t, r, http.StatusServiceUnavailable)
		})
	}
}

// TestStaleAfterATouchThatTimedOut: a touch changes nothing the
// copy serves, whether Redis ran it when it resumed or not; the copy
// still serves the session while the store is down.
func TestStaleAfterATouchThatTimedOut(t *testing.T) {
	slow(t, "waiting out a Redis read_timeout, then for Caddy to see Redis stop")
	srv, s, logFile, alice := redisPolicySite(t, "stale 5m")
	alice.get("/style.css")        // into the client's cache again
	clock.Advance(2 * time.Minute) // past touch_interval: the next read touches
	srv.Pause()
	r := alice.get("/")
	srv.Resume()
	expectStatus(t, r, http.StatusOK)
	wantDecision(t, logFile, "stale", "touch_skipped", alice.sid)

	srv.Stop()
	untilStoreDown(t, s, logFile)
	expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
	wantDecision(t, logFile, "stale", "stale", alice.sid)
}
