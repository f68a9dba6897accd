package redis

import (
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestFlash runs the flash suite on a single server and on a Cluster,
// with the local cache on: a take or a restore read from a stale copy
// finds the session changed when it writes, and reads it again.
func TestFlash(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		storetest.Flash(t, func(t *testing.T) store.Store {
			s := b.newStore(t, Options{})
			inspector := b.inspector(t, s)
			flush(t, inspector)
			return checkedStore{Store: s, inspector: inspector, t: t}
		}, pauseRedis)
	})
}

// pauseRedis is storetest.Pause: the hook runs between the read of the
// session and the script that writes only if its ":rev" is still the one
// read, so another Update can run to its end meanwhile.
func pauseRedis(s store.Store, hook func()) bool {
	s.(checkedStore).beforeWrite = hook
	return true
}
