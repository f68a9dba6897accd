package redis

import (
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestRevoke runs the suite of a revocation by user racing renewals on a
// single server and on a Cluster: the renewals run to their end while the
// revocation waits to delete the session it read.
func TestRevoke(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		storetest.Revoke(t, func(t *testing.T) store.Store {
			s := b.newStore(t, Options{})
			inspector := b.inspector(t, s)
			flush(t, inspector)
			return checkedStore{Store: s, inspector: inspector, t: t}
		}, pauseRedis)
	})
}
