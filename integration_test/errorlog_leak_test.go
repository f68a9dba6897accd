package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestErrorLogHoldsNoSessionValues: when the app cannot be reached (a
// 502), the session_errors guard that the session directive adds to the
// site's error routes logs the error at error level, as Caddy would have
// without error routes. It logs the request as it stands after the
// session handler forwarded the session to it: with the session's values
// (X-Session-User, X-Session-Team), the session's CSRF token (derived from
// the ID) and its signed token. SECURITY.md: "logs never hold a raw ID,
// nor session values at info level or above"; a CSRF refusal's log line
// never holds the token. Caddy's own error log (without the guard) logs
// the request as the client sent it, with none of these.
func TestErrorLogHoldsNoSessionValues(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "caddy.log")
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	log {
		output file %s
		level INFO
	}
}
http://127.0.0.1:%d {
	session {
		store bolt %s
		csrf {
			token
		}
		sign {
			secret 0123456789abcdef0123456789abcdef-test-only
			keys user team
		}
	}
	handle /down {
		reverse_proxy 127.0.0.1:%d
	}
	reverse_proxy %s
}
`, adminPort, logFile, s.port, filepath.Join(dir, "s.db"), freePort(t), up.addr()), "caddyfile")

	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Team: s3cr3t-team"), http.StatusOK)
	saw := v.get("/")
	csrfToken := saw.seen.Headers.Get("X-Session-Meta-Csrf-Token")
	if csrfToken == "" || saw.seen.Headers.Get("X-Session-Meta-Token") == "" {
		t.Fatalf("the app got no CSRF token or signed token: %v", saw.session())
	}
	expectStatus(t, v.get("/down"), http.StatusBadGateway)

	text := waitForText(t, logFile, `"uri":"/down"`)
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, `"uri":"/down"`) {
			continue
		}
		for what, secret := range map[string]string{
			"the session ID":              v.sid,
			"a session value":             "s3cr3t-team",
			"the session's CSRF token":    csrfToken,
			"a signed token (its header)": "X-Session-Meta-Token",
		} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line at info or above holds %s:\n%s", what, line)
			}
		}
	}
}
