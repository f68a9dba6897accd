package redistest

import (
	"strings"
	"testing"
	"time"
)

// TestSentinelFailover checks that the sentinels come up watching the
// master and the replica, and that Failover moves the master, keeps the
// data, and turns the old master into the new one's replica.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: the sentinels take seconds to find each other, and a failover 10 or more")
	}
	start := time.Now()
	sn := StartSentinel(t, SentinelOptions{MasterName: "sessions"})
	t.Logf("sentinels ready in %s", time.Since(start))
	if sn.MasterName() != "sessions" {
		t.Errorf("MasterName = %q", sn.MasterName())
	}
	if addrs := sn.SentinelAddrs(); len(addrs) != 3 {
		t.Fatalf("SentinelAddrs = %v, want 3", addrs)
	}
	old, replica := sn.Master(), sn.Replica()
	if old == replica {
		t.Fatal("Master and Replica are one node")
	}
	if reply, err := old.Do("SET", "k", "v"); err != nil || reply != "+OK" {
		t.Fatalf("SET: %q, %v", reply, err)
	}
	// WAIT for the replica to have it, so the failover cannot lose it.
	if reply, err := old.Do("WAIT", "1", "5000"); err != nil || reply != ":1" {
		t.Fatalf("WAIT: %q, %v", reply, err)
	}

	start = time.Now()
	sn.Failover(t)
	t.Logf("failover in %s", time.Since(start))
	m := sn.Master()
	if m != replica {
		t.Fatalf("the master is %s after a failover, want %s", m.Addr(), replica.Addr())
	}
	for _, s := range sn.Sentinels() {
		if got, err := sn.masterOf(s); err != nil || got != m {
			t.Errorf("sentinel %s names %v as master, %v", s.Addr(), got, err)
		}
	}
	if reply, err := m.Do("GET", "k"); err != nil || reply != "v" {
		t.Errorf("GET from the new master: %q, %v", reply, err)
	}
	if reply, err := m.Do("SET", "k", "w"); err != nil || reply != "+OK" {
		t.Errorf("SET on the new master: %q, %v", reply, err)
	}
	info, err := old.Do("INFO", "replication")
	if err != nil || !strings.Contains(info, "role:slave") {
		t.Errorf("the old master is no replica: %q, %v", info, err)
	}
	if reply, err := old.Do("SET", "k", "x"); err != nil || !strings.HasPrefix(reply, "-READONLY") {
		t.Errorf("SET on the old master: %q, %v; want READONLY", reply, err)
	}
}

// TestSentinelAuth checks the passwords and the ACL user of
// SentinelOptions: the nodes and the sentinels refuse clients without them.
// StartSentinel waits until the sentinels answer each other, which they do
// only if they log in to each other; with a user, a stopped master shows
// that they also agree, which takes their talking to each other.
func TestSentinelAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: the sentinels take seconds to find each other and to fail over")
	}
	type ping struct {
		name           string
		sentinel       bool // PING a sentinel, or else the master
		user, password string
		want           string // the answer, or its start for an error
	}
	tests := []struct {
		name       string
		opts       SentinelOptions
		pings      []ping
		stopMaster bool
	}{
		{
			name: "passwords",
			opts: SentinelOptions{Password: "node pass", SentinelPassword: "sentinel pass"},
			pings: []ping{
				{"master without a password", false, "", "", "-NOAUTH"},
				{"master with the sentinels' password", false, "", "sentinel pass", "-WRONGPASS"},
				{"master with its password", false, "", "node pass", "+PONG"},
				{"sentinel without a password", true, "", "", "-NOAUTH"},
				{"sentinel with the nodes' password", true, "", "node pass", "-WRONGPASS"},
				{"sentinel with its password", true, "", "sentinel pass", "+PONG"},
			},
		},
		{
			name: "sentinel user",
			opts: SentinelOptions{Password: "node pass", SentinelUser: "watcher", SentinelPassword: `sentinel "pass"`},
			pings: []ping{
				{"master with its password", false, "", "node pass", "+PONG"},
				{"sentinel without a password", true, "", "", "-NOAUTH"},
				{"sentinel's default user", true, "", `sentinel "pass"`, "-WRONGPASS"},
				{"sentinel's user", true, "watcher", `sentinel "pass"`, "+PONG"},
			},
			stopMaster: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sn := StartSentinel(t, tc.opts)
			m := sn.Master()
			for _, p := range tc.pings {
				srv := m
				if p.sentinel {
					srv = sn.Sentinels()[0]
				}
				if reply, err := srv.DoAs(p.user, p.password, "PING"); err != nil || !strings.HasPrefix(reply, p.want) {
					t.Errorf("%s: PING = %q, %v; want %s", p.name, reply, err, p.want)
				}
			}
			if !tc.stopMaster {
				return
			}
			// Two sentinels must agree that the master is down.
			start := time.Now()
			next := sn.Replica()
			m.Stop()
			sn.AwaitMaster(t, next)
			t.Logf("failed over from a stopped master in %s", time.Since(start))
			if got := sn.Master(); got != next {
				t.Fatalf("the master is %s, want %s", got.Addr(), next.Addr())
			}
		})
	}
}
