package integration_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestUnreplicatedMoveKeepsTheDevice: with wait_replicas, a write that
// moves a session to a new ID (a renewal, a login that rotates the ID)
// and that the replica does not acknowledge in time gets a 503 (README,
// "Failover"), but the master has it: the old ID is now a forward record
// that no request adopts. The 503 must carry the new ID's cookie, as a
// commit that failed after the store took part of it does; without it the
// device is logged out, its cart lost, by a request that the app answered
// as a success. A logout so stored is one: its 503 expires the cookie.
func TestUnreplicatedMoveKeepsTheDevice(t *testing.T) {
	slow(t, "a master, a replica and wait_timeout")
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	waitFor(t, 10*time.Second, func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	s := newSiteOn(t, "store redis "+master.URL()+" {\n\t\t\twait_replicas 1\n\t\t\twait_timeout 1s\n\t\t}", "")

	rows := []struct {
		name    string
		before  []string // commands of the request before the replica stops
		command string
		want    map[string]string
	}{
		{"a renewal", []string{"X-Session-Set-User: alice", "X-Session-Set-Cart: apple"}, "X-Session-Renew: true",
			map[string]string{"user": "alice", "cart": "apple"}},
		{"a login from a session with a cart", []string{"X-Session-Set-Cart: pear"}, "X-Session-Set-User: bob",
			map[string]string{"user": "bob", "cart": "pear"}},
		{"a logout that keeps the cart", []string{"X-Session-Set-User: carol", "X-Session-Set-Cart: fig"}, "X-Session-Delete: user",
			map[string]string{"cart": "fig"}},
		{"a logout", []string{"X-Session-Set-User: dave"}, "X-Session-Destroy: true", map[string]string{}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			v := s.visitor()
			expectStatus(t, v.get("/", row.before...), http.StatusOK)
			old := v.sid
			replica.Pause()
			r := v.get("/", row.command)
			replica.Resume()
			expectStatus(t, r, http.StatusServiceUnavailable)
			if got := sessionWith(t, s, v.sid); !mapsEqual(got, row.want) {
				t.Fatalf("after the 503 the device's cookie (%q, was %q) opens %v, want %v",
					v.sid, old, got, row.want)
			}
			if got := sessionWith(t, s, old); len(got) != 0 && v.sid != old {
				t.Fatalf("the ID from before the 503 still opens %v", got)
			}
		})
	}
}
