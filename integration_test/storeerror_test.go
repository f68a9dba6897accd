package integration_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// on_store_error, with a real outage: redis-server stopped or stalled
// under a running Caddy, and a bolt file on a full disk.

// loggedSite is newSiteWith whose Caddy logs as JSON to the file
// returned.
func loggedSite(t *testing.T, store, options string) (*site, string) {
	t.Helper()
	s := newSiteWith(t, store, "", options)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	s.globals = fmt.Sprintf("log {\n\t\toutput file %s\n\t\tformat json\n\t\texclude http.handlers.reverse_proxy\n\t}", logFile)
	s.load()
	return s, logFile
}

// redisWithTimeouts is a store line for a Redis that gives up on a
// stopped server within a second.
func redisWithTimeouts(srv *redistest.Server) string {
	return "store redis " + srv.URL() + " {\n\t\t\tdial_timeout 1s\n\t\t\tread_timeout 1s\n\t\t\tcache_ttl 1h\n\t\t}"
}

// ended are sessions that this Caddy saw end before the outage: a logout,
// a revocation through the admin API, a logout everywhere.
type ended struct{ loggedOut, revoked, allOfUser *visitor }

// endSessions logs three users in and ends their sessions three ways,
// each session having been read first.
func endSessions(t *testing.T, s *site) ended {
	t.Helper()
	var e ended
	e.loggedOut = s.visitor()
	e.loggedOut.get("/login", "X-Session-Set-User: bob")
	expectSession(t, e.loggedOut.get("/"), map[string]string{"X-Session-User": "bob"})
	was := e.loggedOut.sid
	expectStatus(t, e.loggedOut.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	e.loggedOut.sid = was // the cookie a thief kept

	e.revoked = s.visitor()
	e.revoked.get("/login", "X-Session-Set-User: carol")
	expectSession(t, e.revoked.get("/"), map[string]string{"X-Session-User": "carol"})
	sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(e.revoked.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})

	e.allOfUser = s.visitor()
	e.allOfUser.get("/login", "X-Session-Set-User: dave")
	expectSession(t, e.allOfUser.get("/"), map[string]string{"X-Session-User": "dave"})
	other := s.visitor()
	other.get("/login", "X-Session-Set-User: dave")
	expectStatus(t, other.get("/logout-everywhere", "X-Session-Destroy-All: true"), http.StatusOK)
	return e
}

// untilStoreDown sends requests with an ID no store has seen, so that no
// cache answers them, until the log shows that the policy had to decide
// for one: from then on Caddy knows its connection to Redis is gone.
func untilStoreDown(t *testing.T, s *site, logFile string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		probe := &visitor{site: s, sid: session.NewID()}
		probe.get("/")
		for _, l := range readLog(t, logFile) {
			if l.str("decision") != "" && l.str("session") == session.HashID(probe.sid).Short() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("requests with an unknown ID were still answered by the store 15s after Redis stopped")
		}
	}
}

// wantDecision checks that the log tells of decision by the policy for
// the session of id (any session if id is "").
func wantDecision(t *testing.T, logFile, policy, decision, id string) {
	t.Helper()
	for _, l := range readLog(t, logFile) {
		if l.str("policy") == policy && l.str("decision") == decision && (id == "" || l.str("session") == session.HashID(id).Short()) {
			return
		}
	}
	t.Fatalf("no %s decision %q for %q in the log", policy, decision, id)
}

// TestOnStoreErrorRedisStopped stops Redis under each policy.
func TestOnStoreErrorRedisStopped(t *testing.T) {
	slow(t, "waiting for Caddy to see Redis stop, under three policies")
	cases := []struct {
		policy string
		check  func(t *testing.T, s *site, logFile string, alice *visitor, e ended)
	}{
		{"503", func(t *testing.T, s *site, logFile string, alice *visitor, e ended) {
			expectStatus(t, alice.get("/"), http.StatusServiceUnavailable)
			wantDecision(t, logFile, "503", "unavailable", alice.sid)
		}},
		{"anonymous", func(t *testing.T, s *site, logFile string, alice *visitor, e ended) {
			r := alice.get("/")
			expectStatus(t, r, http.StatusOK)
			expectSession(t, r, map[string]string{})
			wantDecision(t, logFile, "anonymous", "anonymous", alice.sid)
			// A response with commands is never delivered as if written.
			expectStatus(t, alice.get("/cart", "X-Session-Set-Cart: apple"), http.StatusServiceUnavailable)
			wantDecision(t, logFile, "anonymous", "write_refused", "")
		}},
		{"stale 5m", func(t *testing.T, s *site, logFile string, alice *visitor, e ended) {
			sid := alice.sid
			r := alice.get("/")
			expectSession(t, r, map[string]string{"X-Session-User": "alice"})
			if alice.sid != sid || len(r.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("a read from the copy set a cookie: %q", r.Header.Values("Set-Cookie"))
			}
			wantDecision(t, logFile, "stale", "stale", alice.sid)
			expectStatus(t, alice.get("/cart", "X-Session-Set-Cart: apple"), http.StatusServiceUnavailable)
			expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusServiceUnavailable)
			wantDecision(t, logFile, "stale", "write_refused", alice.sid)
			// Sessions this Caddy saw end are never served from the copy.
			for name, v := range map[string]*visitor{"logged out": e.loggedOut, "revoked": e.revoked, "logged out everywhere": e.allOfUser} {
				if r := v.get("/"); r.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("the session %s before the outage: status %d, session %v", name, r.StatusCode, r.session())
				}
			}
			// Past the duration, the copy is too old to serve.
			clock.Advance(5*time.Minute + time.Second)
			expectStatus(t, alice.get("/"), http.StatusServiceUnavailable)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			srv := redistest.Start(t)
			s, logFile := loggedSite(t, redisWithTimeouts(srv), "on_store_error "+tc.policy)
			alice := s.visitor()
			expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
			e := endSessions(t, s)

			srv.Stop()
			untilStoreDown(t, s, logFile)
			tc.check(t, s, logFile, alice, e)

			// Whatever the policy: no login while the store is down, and
			// a request with no session is served.
			newcomer := s.visitor()
			r := newcomer.get("/login", "X-Session-Set-User: mallory")
			expectStatus(t, r, http.StatusServiceUnavailable)
			if c := r.sessionCookie(); c != nil {
				t.Fatalf("a login that was not stored issued a cookie: %v", c)
			}
			expectStatus(t, s.visitor().get("/"), http.StatusOK)
		})
	}
}

// TestOnStoreErrorRedisStalled stalls Redis (SIGSTOP): the session is
// still read from the client's tracked cache, whose connection stays
// open, but its touch times out. Under 503 the response is refused; under
// anonymous and stale it is delivered without the touch.
func TestOnStoreErrorRedisStalled(t *testing.T) {
	slow(t, "waiting out Redis timeouts while Redis is stalled, under three policies")
	cases := []struct {
		policy string
		status int
	}{
		{"503", http.StatusServiceUnavailable},
		{"anonymous", http.StatusOK},
		{"stale 5m", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			srv := redistest.Start(t)
			s, logFile := loggedSite(t, redisWithTimeouts(srv), "on_store_error "+tc.policy)
			alice := s.visitor()
			expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
			expectStatus(t, alice.get("/save", "X-Session-Flash-Notice: saved"), http.StatusOK)
			alice.get("/style.css") // not a navigation: reads the session into the client's cache again

			// Each of the touch and the take waits out read_timeout.
			s.tester.Client.Timeout = 20 * time.Second
			srv.Pause()
			clock.Advance(2 * time.Minute) // past touch_interval: the next read touches
			r := alice.do(http.MethodGet, "/", "Sec-Fetch-Mode", "navigate")
			expectStatus(t, r, tc.status)
			if tc.status == http.StatusOK {
				// Neither the touch nor the take of the flash value could
				// be stored: the page is served without them.
				expectSession(t, r, map[string]string{"X-Session-User": "alice"})
				policy, _, _ := strings.Cut(tc.policy, " ")
				wantDecision(t, logFile, policy, "touch_skipped", alice.sid)
				wantDecision(t, logFile, policy, "flash_skipped", alice.sid)
			}
			// (Whether the flash value is still there afterwards is
			// Redis's to say: a stalled Redis runs the take it was sent
			// when it resumes, as for any write that timed out.)
			srv.Resume()
		})
	}
}

// TestOnStoreErrorBoltFullDisk fills the disk under a bolt store: reads
// need no space and are served whatever the policy; a write that cannot
// be stored is a 503 under every policy.
func TestOnStoreErrorBoltFullDisk(t *testing.T) {
	for _, policy := range []string{"503", "anonymous", "stale 1m"} {
		t.Run(policy, func(t *testing.T) {
			dir := mountTmpfs(t, 1<<20)
			s := newSiteWith(t, "store bolt "+filepath.Join(dir, "sessions.db"), "", "on_store_error "+policy)
			alice := s.visitor()
			expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			filler := fill(t, dir, 0)
			t.Cleanup(func() { os.Remove(filler) })

			blob := strings.Repeat("b", session.DefaultValueSize)
			refused := false
			for i := 0; i < 200 && !refused; i++ {
				v := s.visitor()
				r := v.get("/login", "X-Session-Set-User: "+fmt.Sprint("user-", i), "X-Session-Set-Blob: "+blob)
				switch r.StatusCode {
				case http.StatusServiceUnavailable:
					if v.sid != "" {
						t.Fatal("a login that was not stored issued a cookie")
					}
					refused = true
				case http.StatusOK:
				default:
					t.Fatalf("login %d: status %d", i, r.StatusCode)
				}
			}
			if !refused {
				t.Fatal("200 logins of 4 KiB each fitted on a full 1 MiB disk")
			}
			expectStatus(t, alice.get("/cart", "X-Session-Set-Cart: "+blob), http.StatusServiceUnavailable)
			expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
		})
	}
}
