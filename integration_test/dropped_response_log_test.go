package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestDroppedResponseLogsNoSessionValues: the store fails when it is to
// take the commands of the app's answer (Redis stopped, the bolt file
// moved away, while the app was answering), so the session handler drops
// the answer for a 503 (README, "When the store fails"): a write of the
// body gets an error, which stops reverse_proxy. reverse_proxy logs an
// aborted copy of a body with the request it sent upstream, headers and
// all, and those hold what the session handler forwarded: the session's
// values, its CSRF token, its signed token. At warn level that broke
// SECURITY.md's "logs never hold a raw ID, nor session values at info
// level or above"; only a copy its client canceled is logged at debug.
//
// Each row is one kind of command the failed store could not take. The
// whole process's log at debug level (access log included) is checked for
// the raw ID at any level, and for the session's values, the CSRF token
// and the signed token at info and above. The client never sends any of
// them: the app sets the values on its own.
func TestDroppedResponseLogsNoSessionValues(t *testing.T) {
	rows := []struct {
		name     string
		commands []string // "Name: value" lines of the app's failed answer
	}{
		{"a key set", []string{"X-Session-Set-Cart: pear"}},
		{"a login (a new ID)", []string{"X-Session-Set-User: bob-s3cr3t"}},
		{"a renewal", []string{"X-Session-Renew: true"}},
		{"a flash value", []string{"X-Session-Flash-Notice: saved"}},
		{"a logout", []string{"X-Session-Destroy: true"}},
		{"a logout everywhere", []string{"X-Session-Destroy-All: true"}},
		{"a revocation", []string{"X-Session-Revoke: $OTHER"}},
	}
	stores := []struct {
		name string
		// start returns the store line, and how to make the store fail
		// and how to mend it.
		start func(t *testing.T) (line string, fail, mend func())
	}{
		{"bolt", func(t *testing.T) (string, func(), func()) {
			db := filepath.Join(t.TempDir(), "sessions.db")
			move := func(from, to string) {
				if err := os.Rename(from, to); err != nil {
					t.Errorf("moving the bolt file: %v", err)
				}
			}
			// A file moved away while open refuses writes (store/bolt,
			// checkFile); reads go on.
			return "store bolt " + db, func() { move(db, db+".away") }, func() { move(db+".away", db) }
		}},
		{"redis", func(t *testing.T) (string, func(), func()) {
			rs := redistest.Start(t)
			acl := func(rules ...string) func() {
				return func() {
					if _, err := rs.Do(append([]string{"ACL", "SETUSER", "default"}, rules...)...); err != nil {
						t.Errorf("changing the rights of redis's default user: %v", err)
					}
				}
			}
			// Writes are refused (NOPERM), reads go on, and the
			// connections stay up.
			return "store redis " + rs.URL(), acl("-@write"), acl("+@all")
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			line, fail, mend := st.start(t)
			var other atomic.Value // the short hash of another session of the user, for $OTHER
			commands := map[string][]string{}
			for i, row := range rows {
				commands[fmt.Sprintf("/fail/%d", i)] = row.commands
			}
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/login":
					w.Header().Set("X-Session-Set-User", "alice-s3cr3t")
					w.Header().Set("X-Session-Set-Team", "team-s3cr3t")
				case commands[r.URL.Path] != nil:
					fail() // after the load, before the commit
					for _, c := range commands[r.URL.Path] {
						name, value, _ := strings.Cut(c, ":")
						value = strings.ReplaceAll(strings.TrimSpace(value), "$OTHER", other.Load().(string))
						w.Header().Set(name, value)
					}
				}
				serveUpstream(w, r) // a body to copy
			}))
			t.Cleanup(app.Close)

			logFile := filepath.Join(t.TempDir(), "caddy.log")
			s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t)}
			s.tester.Client.Jar = nil
			s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	log {
		output file %s
		format json
		level DEBUG
	}
}
http://127.0.0.1:%d {
	log {
		output file %s
		format json
	}
	session {
		%s
		csrf {
			token
		}
		sign {
			secret 0123456789abcdef0123456789abcdef-test-only
		}
	}
	reverse_proxy %s
}
`, adminPort, s.port, freePort(t), logFile, s.port, logFile, line, app.Listener.Addr()), "caddyfile")

			secrets := map[string]string{ // what → text no line at info or above may hold
				"a value of the session": "team-s3cr3t",
				"the user's name":        "alice-s3cr3t",
				"a value the app set":    "bob-s3cr3t",
				"a signed token":         "X-Session-Meta-Token",
			}
			var ids []string // raw IDs, which no line may hold
			for i, row := range rows {
				path := fmt.Sprintf("/fail/%d", i)
				v := s.visitor()
				expectStatus(t, v.get("/login"), http.StatusOK)
				saw := v.get("/page")
				token := saw.seen.Headers.Get("X-Session-Meta-Csrf-Token")
				if v.sid == "" || token == "" || saw.seen.Headers.Get("X-Session-Meta-Token") == "" {
					t.Fatalf("%s: the app got no session, CSRF token or signed token: %v", row.name, saw.session())
				}
				secrets["the CSRF token of row "+row.name] = token
				ids = append(ids, v.sid)
				second := s.visitor() // another device of the user, to revoke
				expectStatus(t, second.get("/login"), http.StatusOK)
				other.Store(second.adminHash()[:16])
				ids = append(ids, second.sid)

				r := v.get(path)
				mend()
				if r.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(r.body), "headers") {
					t.Errorf("%s: the failed store's answer is %d %q, want a 503 without the app's page", row.name, r.StatusCode, r.body)
				}
			}

			var marks []string
			for i := range rows {
				marks = append(marks, fmt.Sprintf(`"uri":"/fail/%d"`, i))
			}
			waitForText(t, logFile, marks...)
			failed := map[string]bool{}
			for _, l := range readLog(t, logFile) {
				if l.str("logger") == "http.handlers.session_errors" && l.str("level") == "error" {
					for i, m := range marks {
						if strings.Contains(l.raw, m) {
							failed[rows[i].name] = true
						}
					}
				}
				for _, id := range ids {
					if strings.Contains(l.raw, id) {
						t.Errorf("a log line at %s holds a raw session ID:\n%s", l.str("level"), l.raw)
					}
				}
				if l.str("level") == "debug" {
					continue
				}
				for what, secret := range secrets {
					if strings.Contains(l.raw, secret) {
						t.Errorf("a log line at %s holds %s:\n%s", l.str("level"), what, l.raw)
					}
				}
			}
			for _, row := range rows {
				if !failed[row.name] {
					t.Errorf("%s: no error line tells of the store's failure; log:\n%s", row.name, mustRead(t, logFile))
				}
			}
		})
	}
}
