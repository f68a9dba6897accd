package store

import (
	"slices"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideSealed checks what Decide hands a store for sealed sessions:
// the outcome's record sealed under the key of where it goes, in place
// with the ciphertexts of what did not change and Set naming only what
// did, and a forward record that carries the successor's key.
func TestDecideSealed(t *testing.T) {
	index, err := session.NewIndexKey([]byte("decide index secret, 32 bytes or more"))
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := session.DeriveSealKey("a"), session.DeriveSealKey("b")
	sealed := func(kv ...string) *session.Record {
		rec := live(realm, kv...)
		for k, v := range rec.Values {
			rec.Values[k] = keyA.SealValue(hashA, k, v)
		}
		rec.Sealed = true
		rec.SetIdentityTag(index.Tag("user", "alice"))
		return rec
	}
	update := func(p *session.Patch) Update {
		return Update{Hash: hashA, HasHash: true, Patch: p, Identity: "user", Seen: "alice", Realm: realm,
			Now: now, Timeouts: timeouts, Limits: session.Limits{Keys: 8, ValueSize: 64, SessionSize: 256},
			Seal: &Sealing{Key: keyA, Index: index}}
	}
	opened := func(t *testing.T, key *session.SealKey, at session.Hash, rec *session.Record) *session.Record {
		t.Helper()
		c := rec.Clone()
		if err := key.Open(at, c); err != nil {
			t.Fatalf("opening the outcome's record: %v", err)
		}
		return c
	}

	t.Run("in place", func(t *testing.T) {
		stored := sealed("user=alice", "cart=1")
		o := Decide(update(&session.Patch{Set: map[string]string{"cart": "2"}}), hashA, stored, 0)
		if o.Err != nil || !o.InPlace || !o.Write.Sealed || o.Result.Record.Sealed {
			t.Fatalf("outcome %+v", o)
		}
		if !slices.Equal(o.Set, []string{"cart"}) || len(o.Del) != 0 {
			t.Errorf("Set %v Del %v, want [cart] []", o.Set, o.Del)
		}
		if o.Write.Values["user"] != stored.Values["user"] {
			t.Error("an unchanged value was sealed again")
		}
		if got := opened(t, keyA, hashA, o.Write); got.Values["cart"] != "2" || got.Values["user"] != "alice" {
			t.Errorf("opened %v", got.Values)
		}
		if o.Result.Record.Values["cart"] != "2" || o.Write.IdentityTag() != index.Tag("user", "alice") {
			t.Errorf("result %v, tag %q", o.Result.Record.Values, o.Write.IdentityTag())
		}
	})
	t.Run("a plain session sealed in place", func(t *testing.T) {
		o := Decide(update(nil), hashA, live(realm, "user=alice", "cart=1"), 0)
		if o.Err != nil || !o.InPlace || !o.Write.Sealed || !slices.Equal(o.Set, []string{"cart", "user"}) {
			t.Fatalf("outcome: err %v, in place %v, sealed %v, Set %v; want every key set sealed", o.Err, o.InPlace, o.Write.Sealed, o.Set)
		}
	})
	t.Run("rotation", func(t *testing.T) {
		u := update(&session.Patch{Renew: true})
		u.NewHash, u.Seal.NewKey = ptr(hashB), keyB
		o := Decide(u, hashA, sealed("user=alice", "cart=1"), 0)
		if o.Err != nil || o.WriteAt != hashB || o.Forward == nil || o.Forward.SuccessorKey() == "" {
			t.Fatalf("outcome %+v", o)
		}
		if got := opened(t, keyB, hashB, o.Write); got.Values["cart"] != "1" {
			t.Errorf("opened under the new ID: %v", got.Values)
		}
		next, err := keyA.OpenSuccessor(hashA, o.Forward)
		if err != nil {
			t.Fatal(err)
		}
		// A late request of the old ID reaches the successor with it.
		late := Decide(update(&session.Patch{Set: map[string]string{"cart": "3"}}), hashA, o.Forward, 0)
		if late.Next == nil || *late.Next != hashB {
			t.Fatalf("late request: %+v", late)
		}
		onward := late.Onward(update(&session.Patch{Set: map[string]string{"cart": "3"}}))
		there := Decide(onward, hashB, o.Write, 1)
		if there.Err != nil || !there.Result.Followed || opened(t, next, hashB, there.Write).Values["cart"] != "3" {
			t.Fatalf("the late write at the successor: %+v", there)
		}
	})
	t.Run("no key", func(t *testing.T) {
		u := update(nil)
		u.Seal = nil
		if o := Decide(u, hashA, sealed("user=alice"), 0); o.Err != ErrNoSealKey || o.Writes() {
			t.Fatalf("outcome %+v, want ErrNoSealKey and no write", o)
		}
	})
}
