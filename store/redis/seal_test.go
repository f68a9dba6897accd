package redis

import (
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestSealed runs the suite of sealed values on a single server and on a
// Cluster, with the local cache on.
func TestSealed(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		storetest.Sealed(t, func(t *testing.T) store.Store {
			s := b.newStore(t, Options{})
			inspector := b.inspector(t, s)
			flush(t, inspector)
			return checkedStore{Store: s, inspector: inspector, t: t}
		})
	})
}
