package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestAdminEndOnItsWayAcrossAReloadReachesTheStaleCopy: the admin API
// revokes a session (DELETE /session/sessions/<hash>) or every session of
// a user (POST /session/revoke) through the stores of the running config.
// With no handler of on_store_error stale there, it wrapped none of the
// stale copy's, and told no copy. A reload that turns the policy on while
// the revocation is on its way to the store (a slow store) has the new
// config read the sessions into its copy before the end lands; once the
// store fails, the copy must not serve them: README, "A session this
// Caddy saw end ... is never served from it". This is the admin's side
// of TestEndOnItsWayAcrossAReloadReachesTheStaleCopy, which the handlers
// without the policy pass by telling the store's copy (staleTeller).
func TestAdminEndOnItsWayAcrossAReloadReachesTheStaleCopy(t *testing.T) {
	ends := []struct {
		name string
		// send is the admin request that ends alice's sessions; both
		// ends the revoke of her user, and one only the session of her
		// first device.
		send func(hash string) *http.Request
		both bool
	}{
		{"a revoke of one session", func(hash string) *http.Request {
			req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("http://localhost:%d/session/sessions/%s", adminPort, hash), nil)
			return req
		}, false},
		{"a revoke of every session of the user", func(string) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/revoke", adminPort), strings.NewReader(`{"value": "alice"}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		}, true},
	}
	for _, tc := range ends {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { failReads.Store(false) })
			srv := httptest.NewServer(http.HandlerFunc(serveUpstream))
			t.Cleanup(srv.Close)
			db := filepath.Join(t.TempDir(), "sessions.db")
			port := freePort(t)
			config := func(options string) string {
				return fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store hold_before_write faulty %s
		%s
	}
	reverse_proxy %s
}
`, adminPort, port, db, options, srv.Listener.Addr())
			}
			s := &site{t: t, tester: caddytest.NewTester(t), port: port}
			s.tester.Client.Jar = nil
			s.reload(config("# no on_store_error"))
			alice := s.visitor()
			expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			other := s.visitor()
			expectStatus(t, other.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
			ended := []string{alice.sid}
			if tc.both {
				ended = append(ended, other.sid)
			}

			held := holdNextWrite(t)
			type result struct {
				status int
				body   string
				err    error
			}
			done := make(chan result, 1)
			req := tc.send(alice.adminHash())
			go func() {
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- result{err: err}
					return
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				done <- result{res.StatusCode, string(b), err}
			}()
			held.wait(t)
			s.reload(config("on_store_error stale 5m"))
			// The user's tabs, under the new config, read the sessions
			// before the revocation lands: their reads are kept.
			for _, id := range ended {
				expectSession(t, (&visitor{site: s, sid: id}).get("/"), map[string]string{"X-Session-User": "alice"})
			}
			held.let()
			got := <-done
			if got.err != nil {
				t.Fatalf("the admin revocation on its way across the reload: %v", got.err)
			}
			if got.status != http.StatusOK {
				t.Fatalf("the admin revocation on its way across the reload: status %d, want 200: %s", got.status, got.body)
			}
			failReads.Store(true)
			for i, id := range ended {
				r := (&visitor{site: s, sid: id}).get("/")
				if r.StatusCode != http.StatusServiceUnavailable || len(r.session()) != 0 {
					t.Fatalf("while the store is down, revoked ID #%d (%s, landed after the reload) is served from the copy: status %d, session %v",
						i, tc.name, r.StatusCode, r.session())
				}
			}
		})
	}
}
