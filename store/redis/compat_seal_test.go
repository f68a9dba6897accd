package redis

import (
	"errors"
	"testing"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestLayout1Sealed: a session stored by the previous code (layout 1,
// with its old identity set and entry in the index of sessions) is
// sealed at its first write with sealing on: the hash becomes layout 2,
// no value stays in the clear, and revocation finds it by the keyed hash
// of its user, no longer by the name.
func TestLayout1Sealed(t *testing.T) {
	t.Parallel()
	s, hashes := openLayout1(t, standalone(t))
	index, err := session.NewIndexKey([]byte("redis compat index secret, 32 bytes or more"))
	if err != nil {
		t.Fatal(err)
	}
	laptop := hashes["laptop"]
	key := session.DeriveSealKey("laptop") // writeLayout1 hashes the name as the ID
	u := layout1Update(laptop, "alice", &session.Patch{Set: map[string]string{"theme": "dark"}})
	u.Seal = &store.Sealing{Key: key, Index: index}
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Record.Values["cart"] != "3" || res.Record.Values["theme"] != "dark" {
		t.Fatalf("sealing write: %+v, %v", res, err)
	}
	fields, err := do(t, s, "HGETALL", s.SessionKey(laptop)).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	if fields[":v"] != "2" || fields[":identity-tag"] != index.Tag("user", "alice") {
		t.Fatalf("fields after sealing: %q", fields)
	}
	for f, v := range fields {
		if v == "alice" || v == "3" || v == "dark" {
			t.Errorf("field %s holds %q in the clear", f, v)
		}
	}
	rec, err := s.Load(t.Context(), laptop, layout1Now, timeouts)
	if err != nil || key.Open(laptop, rec) != nil || rec.Values["user"] != "alice" || rec.Values["cart"] != "3" {
		t.Fatalf("opened: %+v, %v", rec, err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "shop", "user", "alice"); err != nil || n != 1 {
		t.Fatalf("revoking by the name: %d, %v; want the phone's session only", n, err)
	}
	if n, err := s.DeleteByIdentity(t.Context(), "shop", "user", index.Tag("user", "alice")); err != nil || n != 1 {
		t.Fatalf("revoking by the keyed hash: %d, %v; want the laptop's", n, err)
	}
	if _, err := s.Load(t.Context(), laptop, layout1Now, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the sealed session after its revocation: %v", err)
	}
}
