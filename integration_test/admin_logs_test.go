package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// newLoggedSite starts Caddy with a session site on the store line, every
// log of the process at debug level written as JSON to the returned file.
// The reverse proxy's lines are left out: at debug it logs the headers it
// forwards to the upstream, which carry the session's values by design.
func newLoggedSite(t *testing.T, store string) (*site, string) {
	t.Helper()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "caddy.log")
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: filepath.Join(dir, "sessions.db"), up: startUpstream(t)}
	s.tester.Client.Jar = nil
	if store == "" {
		store = "store bolt " + s.db
	}
	s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
	log {
		output file %s
		format json
		level DEBUG
		exclude http.handlers.reverse_proxy
	}
}
http://127.0.0.1:%d {
	session {
		%s
	}
	reverse_proxy %s
}
`, adminPort, s.port, freePort(t), logFile, s.port, store, s.up.addr()), "caddyfile")
	return s, logFile
}

// logLine is one line of a JSON log, with its raw text.
type logLine struct {
	raw    string
	fields map[string]any
}

func (l logLine) str(name string) string { s, _ := l.fields[name].(string); return s }

// readLog returns the lines of a JSON log file. A last line that Caddy is
// still writing, with no newline yet, is left out.
func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var lines []logLine
	for raw := range strings.Lines(string(b)) {
		l := logLine{raw: strings.TrimSuffix(raw, "\n")}
		if err := json.Unmarshal([]byte(l.raw), &l.fields); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, l.raw)
		}
		lines = append(lines, l)
	}
	return lines
}

// sessionAPIAs is sessionAPI with a Content-Type of the test's choosing
// ("" for none).
func sessionAPIAs(t *testing.T, method, path, contentType, body string) *apiAnswer {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", adminPort, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return doAPI(t, req)
}

// TestAdminRevocationsNeverLogTheUser revokes a user's sessions, and one
// session by its hash, through the admin API, and sends it requests it
// refuses that name the user in their bodies. Caddy's log of the whole
// process, at debug level, must then say that the sessions were revoked,
// and hold no raw session ID, nor the user's name outside the events
// app's debug lines of session events.
func TestAdminRevocationsNeverLogTheUser(t *testing.T) {
	const user = "alice-secret-name"
	stores := map[string]func(t *testing.T) string{
		"bolt":  func(*testing.T) string { return "" },
		"redis": func(t *testing.T) string { return "store redis " + redistest.Start(t).URL() },
	}
	for _, name := range []string{"bolt", "redis"} {
		t.Run(name, func(t *testing.T) {
			s, logFile := newLoggedSite(t, stores[name](t))
			var visitors []*visitor
			for _, login := range []string{user, user, "bob"} {
				v := s.visitor()
				v.get("/login", "X-Session-Set-User: "+login, "X-Session-Set-Cart: apple")
				visitors = append(visitors, v)
			}
			bob := visitors[2]
			bobHash, err := session.ParseHash(bob.adminHash())
			if err != nil {
				t.Fatal(err)
			}

			// Refused: the name is in each body, and each error is logged.
			for _, c := range []struct{ contentType, body string }{
				{"application/json", `{"key": "cart", "value": "` + user + `"}`},
				{"application/json", `{"value": "` + user + `", "Value": "bob"}`},
				{"application/json", `{"value": "` + user + `"} {"value": "bob"}`},
				{"text/plain", `{"value": "` + user + `"}`},
			} {
				a := sessionAPIAs(t, http.MethodPost, "/session/revoke", c.contentType, c.body)
				if a.status < 400 || a.status >= 500 {
					t.Fatalf("POST %s as %s: status %d, want a refusal", c.body, c.contentType, a.status)
				}
			}
			var revoked struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "`+user+`"}`).decode(t, http.StatusOK, &revoked)
			if revoked.Revoked != 2 {
				t.Fatalf("revoked %d sessions of %s, want 2", revoked.Revoked, user)
			}
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+bobHash.String(), "").decode(t, http.StatusOK, &revoked)
			for _, v := range visitors {
				expectUser(t, v, "")
			}

			var revokedUser, revokedOne bool
			for _, l := range readLog(t, logFile) {
				// At debug level Caddy's events app logs each event with
				// its data, and a session event names its user by design
				// (README, "Events"), as the reverse proxy's debug lines
				// carry the session's values: those lines are only
				// checked for raw IDs.
				if strings.Contains(l.raw, user) && l.str("logger") != "events" {
					t.Errorf("a log line holds the user's name: %s", l.raw)
				}
				for _, v := range visitors {
					if strings.Contains(l.raw, v.sid) {
						t.Errorf("a log line holds a raw session ID: %s", l.raw)
					}
				}
				switch l.str("msg") {
				case "sessions of a user revoked through the admin API":
					revokedUser = l.str("level") == "info" && l.fields["sessions"] == 2.0 && l.str("key") == "user"
				case "session revoked through the admin API":
					revokedOne = l.str("level") == "info" && l.str("session") == bobHash.Short()
				}
			}
			if !revokedUser || !revokedOne {
				t.Errorf("the log lacks an info line about a revocation (by user: %v, by hash: %v); log:\n%s",
					revokedUser, revokedOne, mustRead(t, logFile))
			}
		})
	}
}

// TestAdminUnknownSessionIsNotAnError asks for and revokes a session the
// store does not hold: a 404, which the log records below error level,
// since a session that has expired or was revoked is no fault.
func TestAdminUnknownSessionIsNotAnError(t *testing.T) {
	s, logFile := newLoggedSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	hash := v.adminHash()
	v.get("/logout", "X-Session-Destroy: true") // now a dead session
	unknown := strings.Repeat("0", 64)

	for _, h := range []string{hash, unknown} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			var e struct{ Error string }
			sessionAPI(t, method, "/session/sessions/"+h, "").decode(t, http.StatusNotFound, &e)
			if !strings.Contains(e.Error, "no live session whose hash starts "+h[:16]) {
				t.Errorf("%s of %s: error %q, want one that names the session", method, h[:16], e.Error)
			}
		}
	}

	found := map[string]int{} // method → debug lines
	for _, l := range readLog(t, logFile) {
		if l.str("level") == "error" {
			t.Errorf("an error-level line for an ordinary answer: %s", l.raw)
		}
		if l.str("msg") == "no such session" && l.str("level") == "debug" {
			found[l.str("method")]++
		}
	}
	if found[http.MethodGet] != 2 || found[http.MethodDelete] != 2 {
		t.Errorf("debug lines for the 404s by method = %v, want 2 GET and 2 DELETE; log:\n%s", found, mustRead(t, logFile))
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
