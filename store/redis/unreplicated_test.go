package redis

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestUnreplicatedWriteReturnsItsResult: a rotation that the replica
// does not acknowledge within WaitTimeout is made on the master all the
// same; Update says so (store.ErrUnreplicated) and returns where the
// session now is, which the caller must hand the client: the old ID is a
// forward record now.
func TestUnreplicatedWriteReturnsItsResult(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	eventually(t, "the replica to sync", func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	b := backend{name: "standalone", addrs: []string{master.Addr()}, single: true}
	s := b.newStore(t, Options{WaitReplicas: 1, WaitTimeout: time.Second})
	h := create(t, s, "unreplicated", base, timeouts, map[string]string{"user": "alice"})

	replica.Pause()
	defer replica.Resume()
	renewed := session.HashID("renewed")
	res, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
		Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits})
	if !errors.Is(err, store.ErrUnreplicated) {
		t.Fatalf("a rotation no replica acknowledged: %v, want store.ErrUnreplicated", err)
	}
	if res.Record == nil || res.Hash != renewed || res.Record.Values["user"] != "alice" {
		t.Fatalf("its result is %+v, want the session under its new ID", res)
	}
	if rec, err := s.Load(t.Context(), renewed, base, timeouts); err != nil || rec.Values["user"] != "alice" {
		t.Fatalf("the new ID opens %+v, %v", rec, err)
	}
	if rec, err := s.Load(t.Context(), h, base, timeouts); err != nil || !rec.Forwarded() {
		t.Fatalf("the old ID holds %+v, %v; want the forward record", rec, err)
	}
}
