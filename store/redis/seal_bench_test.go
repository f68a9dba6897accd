package redis

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// BenchmarkWriteSealed measures what seal_values costs a write in place
// on Redis: a session of 3 keys, about 100 bytes, that the request changes
// one key of, plain and sealed. Decide runs in the store's process either
// way, between the read and the guarded script; sealing adds the opening
// of the values read, the sealing of the one written and the keyed hash of
// the user, and makes the values it sends longer.
func BenchmarkWriteSealed(b *testing.B) {
	srv := redistest.Start(b)
	back := backend{name: "standalone", addrs: []string{srv.Addr()}, single: true}
	index, err := session.NewIndexKey([]byte("benchmark index secret of 32 bytes or more"))
	if err != nil {
		b.Fatal(err)
	}
	values := map[string]string{
		"user":  "user-000042@example.com",
		"roles": "admin,editor,viewer",
		"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
	}
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			s := back.newStore(b, Options{})
			id := session.NewID()
			hash, key := session.HashID(id), session.DeriveSealKey(id)
			var seal func(next bool) *store.Sealing
			if sealed {
				seal = func(next bool) *store.Sealing {
					if next {
						return &store.Sealing{NewKey: key, Index: index}
					}
					return &store.Sealing{Key: key, Index: index}
				}
			} else {
				seal = func(bool) *store.Sealing { return nil }
			}
			if _, err := s.Update(b.Context(), store.Update{
				NewHash: &hash, Patch: &session.Patch{Set: values},
				Identity: "user", Now: base, Timeouts: timeouts, Limits: limits, Seal: seal(true),
			}); err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				if _, err := s.Update(b.Context(), store.Update{
					Hash: hash, HasHash: true, Seen: values["user"],
					Patch:    &session.Patch{Set: map[string]string{"cart": fmt.Sprint("sku-", i)}},
					Identity: "user", Now: base.Add(time.Duration(i) * time.Millisecond), Timeouts: timeouts, Limits: limits,
					Seal: seal(false),
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
