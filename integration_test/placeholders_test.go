package integration_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestPlaceholdersAndLogs uses the session's placeholders in later
// directives and checks that no log line, at any level, carries the raw
// session ID, and that no line at info or above carries a session value.
func TestPlaceholdersAndLogs(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	debugLog, accessLog := filepath.Join(dir, "debug.log"), filepath.Join(dir, "access.log")
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	log {
		output file %s
		level DEBUG
	}
}
http://127.0.0.1:%d {
	log {
		output file %s
	}
	session {
		store bolt %s
	}
	log_append session {http.session_hash}
	request_header X-Who {http.session.user}
	@alice {
		path /hello
		vars {http.session.user} alice
	}
	respond @alice "hello {http.session.user} of {http.session.team}"
	reverse_proxy %s
}
`, adminPort, debugLog, s.port, accessLog, filepath.Join(dir, "s.db"), up.addr()), "caddyfile")

	v := s.visitor()
	v.get("/login", "X-Session-Set-User: bob", "X-Session-Set-Team: s3cr3t-team")
	r := v.get("/")
	if got := r.seen.Headers.Get("X-Who"); got != "bob" {
		t.Fatalf("request_header with {http.session.user} gave %q, want bob", got)
	}
	bobID := v.sid

	a := s.visitor()
	a.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Team: s3cr3t-team")
	r = a.get("/hello")
	if string(r.body) != "hello alice of s3cr3t-team" {
		t.Fatalf("vars matcher and respond on session placeholders gave %q", r.body)
	}
	a.get("/logout", "X-Session-Destroy: true")
	expectStatus(t, a.get("/", "X-Session-Set-Bad.Key: 1"), http.StatusOK) // a rejected command, logged

	// Log files are written by Caddy's own goroutines: wait until the last
	// request's lines have arrived.
	access := waitForText(t, accessLog, "X-Session-Set-Bad.Key", `"uri":"/logout"`)
	debug := waitForText(t, debugLog, "rejected session commands")
	if !strings.Contains(string(access), `"session":"`) {
		t.Fatalf("the access log has no session hash from log_append:\n%s", access)
	}
	for name, text := range map[string]string{"access": string(access), "debug": string(debug)} {
		for _, id := range []string{bobID, a.sid} {
			if id != "" && strings.Contains(text, id) {
				t.Errorf("the %s log contains a raw session ID", name)
			}
		}
		for _, line := range strings.Split(text, "\n") {
			// The test's own orders to the upstream carry the value too.
			line = testOrders.ReplaceAllString(line, "")
			if strings.Contains(line, "s3cr3t-team") && !strings.Contains(line, `"level":"debug"`) {
				t.Errorf("the %s log has a session value at info or above: %s", name, line)
			}
		}
	}
}

var testOrders = regexp.MustCompile(`"Test-Header":\[[^\]]*\]`)

// waitForText polls a file that another goroutine writes until it holds
// every one of the texts, and returns it.
func waitForText(t *testing.T, path string, texts ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		missing := ""
		for _, text := range texts {
			if !strings.Contains(string(b), text) {
				missing = text
			}
		}
		if missing == "" {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q:\n%s", path, missing, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
