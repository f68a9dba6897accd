package bolt

import (
	"errors"
	"testing"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// sealIndex is the index key of the tests of sealed records.
var sealIndex = func() *session.IndexKey {
	k, err := session.NewIndexKey([]byte("bolt compat index secret, 32 bytes or more"))
	if err != nil {
		panic(err)
	}
	return k
}()

// TestSealOldFiles: a session of a file written before sealing, in either
// index layout, is sealed at its first write with sealing on: its index
// entry moves from the name (or its plain digest) to the keyed hash, the
// file stays consistent, and its own ID opens it. A late write through a
// forward record of the old file, which carries no key, leaves the
// successor plain.
func TestSealOldFiles(t *testing.T) {
	for _, tc := range []struct {
		file, prefix string
	}{
		{"v2.db", "v2:"},
		{"v3.db", "v3:"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s := openFixture(t, tc.file)
			now := v3Now // v2Now is the same
			id := tc.prefix + "alice-laptop"
			laptop := session.HashID(id)
			u := v3Update(laptop, "shop", "alice", &session.Patch{Set: map[string]string{"cart": "4"}})
			u.Seal = &store.Sealing{Key: session.DeriveSealKey(id), Index: sealIndex}
			res, err := s.Update(t.Context(), u)
			if err != nil || res.Record.Values["cart"] != "4" || res.Record.Values["user"] != "alice" {
				t.Fatalf("sealing write: %+v, %v", res, err)
			}
			rec, err := s.Load(t.Context(), laptop, now, timeouts)
			if err != nil || !rec.Sealed || rec.Values["user"] == "alice" {
				t.Fatalf("after the write: %+v, %v; want it sealed", rec, err)
			}
			if err := session.DeriveSealKey(id).Open(laptop, rec); err != nil || rec.Values["cart"] != "4" || rec.Values["user"] != "alice" {
				t.Fatalf("opening with its ID: %v, %v", rec.Values, err)
			}
			tag := sealIndex.Tag("user", "alice")
			wantListedAt(t, s, now, "shop", tag, laptop)
			plain, err := s.ListByIdentity(t.Context(), "shop", "user", "alice", now)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range plain {
				if e.Hash == laptop {
					t.Fatal("the sealed session is still listed under the name")
				}
			}
			checkConsistent(t, s)

			late := v3Update(session.HashID(tc.prefix+"bob"), "shop", "bob", &session.Patch{Set: map[string]string{"theme": "dark"}})
			late.Seal = &store.Sealing{Key: session.DeriveSealKey(tc.prefix + "bob"), Index: sealIndex}
			res, err = s.Update(t.Context(), late)
			if err != nil || !res.Followed {
				t.Fatalf("late write through the old forward record: %+v, %v", res, err)
			}
			renewed, err := s.Load(t.Context(), session.HashID(tc.prefix+"bob-renewed"), now, timeouts)
			if err != nil || renewed.Sealed || renewed.Values["theme"] != "dark" {
				t.Fatalf("the successor: %+v, %v; want it plain, with the late write", renewed, err)
			}
			n, err := s.DeleteByIdentity(t.Context(), "shop", "user", tag)
			if err != nil || n != 1 {
				t.Fatalf("revoking by the keyed hash: %d, %v", n, err)
			}
			if _, err := s.Load(t.Context(), laptop, now, timeouts); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the sealed session after its revocation: %v", err)
			}
			checkConsistent(t, s)
		})
	}
}
