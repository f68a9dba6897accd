package integration_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// A login that the store took but its replica did not acknowledge in time
// (wait_replicas) is a 503 that carries the new session's cookie, and its
// placeholders show the new session to whatever runs after the commit.
// On a site without error routes of its own the 503 goes to a catch-all's
// handle_errors, which README promises gets no session of the site: not
// in its placeholders either, which the commit had set among the
// replacer's static values for a request that had no session before.
func TestUnreplicatedLoginReachesForeignErrorRoutesWithoutTheSession(t *testing.T) {
	slow(t, "a master, a replica and wait_timeout")
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	waitFor(t, 10*time.Second, func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	c := newHostedCaddy(t, "p")
	c.load(fmt.Sprintf(`
http://a.localhost:{port:p} {
	handle /app/* {
		session {
			store redis %s {
				wait_replicas 1
				wait_timeout 1s
			}
		}
		reverse_proxy {up}
	}
}
http://:{port:p} {
	respond "catch-all"
	handle_errors {
		request_header -Test-Header # the site's orders are for its own app
		reverse_proxy {up} {
			header_up Test-Placeholder "user=[{http.session.user}] hash=[{http.session_hash}]"
		}
	}
}
`, master.URL()))
	replica.Pause()
	res, body := c.get("a.localhost", "p", "/app/login", "", "X-Session-Set-User: alice")
	replica.Resume()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("the catch-all's error route did not answer: %q", body)
	}
	if got, want := s.Headers.Get("Test-Placeholder"), "user=[] hash=[]"; got != want {
		t.Errorf("the catch-all's error route read the site's new session: %q, want %q", got, want)
	}
	var cookie bool
	for _, ck := range res.Cookies() {
		cookie = cookie || ck.Name == "sid" && ck.Value != ""
	}
	if !cookie {
		t.Errorf("the 503 (status %d) lost the cookie of the session the store took (README, Failover)", res.StatusCode)
	}
}
