package redis

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestOutOfMemory: a Redis at its maxmemory under noeviction refuses the
// writes that need memory. Each write is one script, which Redis refuses
// at its first write command that needs memory, before any other: a
// refused login, renewal, change or touch leaves Redis exactly as it was
// (no new key without its index entry, no forward record without its
// successor). Reads go on, and logouts and revocations, which free
// memory, are made.
func TestOutOfMemory(t *testing.T) {
	b := standalone(t)
	s := b.open(t)
	alice := create(t, s, "alice", base, timeouts, map[string]string{"user": "alice"})
	phone := create(t, s, "alice-phone", base, timeouts, map[string]string{"user": "alice"})
	later := base.Add(2 * timeouts.TouchInterval)
	do(t, s, "CONFIG", "SET", "maxmemory-policy", "noeviction")
	do(t, s, "CONFIG", "SET", "maxmemory", "1")
	t.Cleanup(func() { do(t, s, "CONFIG", "SET", "maxmemory", "0") })
	before := dump(t, s)

	for _, tc := range []struct {
		name string
		u    store.Update
	}{
		{"login", store.Update{NewHash: ptr(session.HashID("bob")), Patch: &session.Patch{Set: map[string]string{"user": "bob"}}}},
		{"renewal", store.Update{Hash: alice, HasHash: true, NewHash: ptr(session.HashID("alice-2")), Patch: &session.Patch{}}},
		{"change", store.Update{Hash: alice, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "3"}}}},
		{"touch", store.Update{Hash: alice, HasHash: true}},
	} {
		u := tc.u
		u.Identity, u.Now, u.Timeouts, u.Limits = "user", later, timeouts, limits
		_, err := s.Update(t.Context(), u)
		if err == nil || !strings.Contains(err.Error(), "OOM") || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s on a full Redis = %v, want its OOM error", tc.name, err)
		}
		if after := dump(t, s); !maps.Equal(after, before) {
			t.Fatalf("the refused %s changed Redis:\nbefore %v\nafter  %v", tc.name, before, after)
		}
	}
	if rec, err := s.Load(t.Context(), alice, later, timeouts); err != nil || rec.Values["user"] != "alice" {
		t.Fatalf("reading a session of a full Redis = %v, %v", rec, err)
	}
	if err := s.Delete(t.Context(), phone); err != nil {
		t.Fatalf("a logout on a full Redis = %v", err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); n != 1 || err != nil {
		t.Fatalf("logging alice out everywhere on a full Redis = %d, %v; want her one session left ended", n, err)
	}
	if got := dump(t, s); len(got) != 0 {
		t.Fatalf("Redis after every session ended holds %v", got)
	}
}
