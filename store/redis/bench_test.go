package redis

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// BenchmarkLoginWaitReplicas measures what wait_replicas costs a login:
// the same creation on a master with one replica, without and with a wait
// for the replica's acknowledgement.
func BenchmarkLoginWaitReplicas(b *testing.B) {
	master := redistest.Start(b, "--repl-diskless-sync-delay", "0")
	redistest.Start(b, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	// The replica is in sync when the master counts it as online.
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, _ := master.Do("INFO", "replication")
		if strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online") {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the replica did not come in sync: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	back := backend{name: "standalone", addrs: []string{master.Addr()}, single: true}
	for _, wait := range []int{0, 1} {
		b.Run(fmt.Sprintf("wait_replicas=%d", wait), func(b *testing.B) {
			s := back.newStore(b, Options{WaitReplicas: wait})
			i := 0
			for b.Loop() {
				h := session.HashID(fmt.Sprint(wait, "-", i))
				i++
				if _, err := s.Update(b.Context(), store.Update{
					NewHash: &h, Patch: &session.Patch{Set: map[string]string{"user": fmt.Sprint("u", i)}},
					Identity: "user", Now: base, Timeouts: timeouts, Limits: limits,
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
