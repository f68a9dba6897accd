package redis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestUnreplicatedWriteReturnsItsResult: a rotation that no replica
// acknowledges within WaitTimeout (here there is none) is made on the
// master all the same; Update says so (store.ErrUnreplicated) and returns
// where the session now is, which the caller must hand the client: the
// old ID is a forward record now. On Cluster, where the rotation is made
// in steps, the steps after the unacknowledged one are made too, so that
// the old ID does not stay live beside the new one.
func TestUnreplicatedWriteReturnsItsResult(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		plain := b.open(t)
		h := create(t, plain, "unreplicated", base, timeouts, map[string]string{"user": "alice"})
		waiting := b.newStore(t, Options{WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond})
		renewed := session.HashID("renewed")
		res, err := waiting.Update(t.Context(), store.Update{Hash: h, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
			Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits})
		if !errors.Is(err, store.ErrUnreplicated) {
			t.Fatalf("a rotation no replica acknowledged: %v, want store.ErrUnreplicated", err)
		}
		if res.Record == nil || res.Hash != renewed || res.Record.Values["user"] != "alice" {
			t.Fatalf("its result is %+v, want the session under its new ID", res)
		}
		if rec, err := plain.Load(t.Context(), renewed, base, timeouts); err != nil || rec.Values["user"] != "alice" {
			t.Fatalf("the new ID opens %+v, %v", rec, err)
		}
		if rec, err := plain.Load(t.Context(), h, base, timeouts); err != nil || !rec.Forwarded() {
			t.Fatalf("the old ID holds %+v, %v; want the forward record", rec, err)
		}
	})
}

// TestRefusedWaitReturnsTheWrite: with wait_replicas, a write whose WAIT
// the master refuses after making the write (the store's user lacks
// +wait) is store.ErrUnreplicated too, with its result: a login or a
// rotation so stored hands out the session's new ID, as one that too few
// replicas acknowledged does, instead of logging the device out. The
// error says what to allow.
func TestRefusedWaitReturnsTheWrite(t *testing.T) {
	t.Parallel()
	d := aclStandalone(t)
	plain := d.admin.open(t)
	noWait := d.user(t, "no-wait", without(aclCommands, "wait")).newStore(t, Options{})
	t.Cleanup(func() { noWait.Close() })
	update := func(u store.Update) (store.Result, error) {
		u.Identity, u.Seen, u.Now, u.Timeouts, u.Limits = "user", "alice", base, timeouts, limits
		return noWait.Update(t.Context(), u)
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnreplicated) || !strings.Contains(err.Error(), "+wait") {
			t.Fatalf("%s whose WAIT Redis refused: %v, want store.ErrUnreplicated that names +wait", what, err)
		}
	}

	h := create(t, plain, "refused wait", base, timeouts, map[string]string{"user": "alice"})
	renewed := session.HashID("refused wait, renewed")
	res, err := update(store.Update{Hash: h, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true}})
	refused("a rotation", err)
	if res.Record == nil || res.Hash != renewed {
		t.Fatalf("the rotation's result is %+v, want the session under its new ID", res)
	}
	if rec, err := plain.Load(t.Context(), renewed, base, timeouts); err != nil || rec.Values["user"] != "alice" {
		t.Fatalf("the new ID opens %+v, %v", rec, err)
	}

	login := session.HashID("refused wait, login")
	res, err = update(store.Update{NewHash: &login, Patch: &session.Patch{Set: map[string]string{"user": "alice"}}})
	refused("a login", err)
	if res.Record == nil || res.Hash != login {
		t.Fatalf("the login's result is %+v, want the new session", res)
	}
	if rec, err := plain.Load(t.Context(), login, base, timeouts); err != nil || rec.Values["user"] != "alice" {
		t.Fatalf("the login's ID opens %+v, %v", rec, err)
	}
}
