package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

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
	app, other := startUpstream(t), startUpstream(t)
	port := freePort(t)
	tester := caddytest.NewTester(t)
	tester.Client.Jar = nil
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://a.localhost:%d {
	handle /app/* {
		session {
			store redis %s {
				wait_replicas 1
				wait_timeout 1s
			}
		}
		reverse_proxy %s
	}
}
http://:%d {
	respond "catch-all"
	handle_errors {
		reverse_proxy %s {
			header_up Test-Placeholder "user=[{http.session.user}] hash=[{http.session_hash}]"
		}
	}
}
`, adminPort, port, freePort(t), port, master.URL(), app.addr(), port, other.addr()), "caddyfile")

	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/app/login", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "a.localhost"
	req.Header.Add("Test-Header", "X-Session-Set-User: alice")
	replica.Pause()
	res, err := tester.Client.Do(req)
	replica.Resume()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("the catch-all's error route did not answer: %q", body)
	}
	if got, want := s.Headers.Get("Test-Placeholder"), "user=[] hash=[]"; got != want {
		t.Errorf("the catch-all's error route read the site's new session: %q, want %q (%v)", got, want, res.Header)
	}
	var cookie bool
	for _, c := range res.Cookies() {
		cookie = cookie || c.Name == "sid" && c.Value != ""
	}
	if !cookie {
		t.Errorf("the 503 lost the cookie of the session the store took (README, Failover): %q", res.Header.Values("Set-Cookie"))
	}
}
