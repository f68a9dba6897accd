package bolt

import (
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestFlash runs the flash suite with the cache on and off, and with
// touches deferred and written at once: a take is never deferred.
func TestFlash(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"defaults", Options{SweepInterval: -1}},
		{"no cache, touches at once", Options{SweepInterval: -1, CacheRecords: -1, TouchDelay: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Flash(t, func(t *testing.T) store.Store {
				s, err := Open(t.TempDir()+"/sessions.db", tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				return checkedStore{s, t}
			}, pauseBolt)
		})
	}
}

// pauseBolt is storetest.Pause: the hook runs inside the write
// transaction, which keeps every other writer out until it commits.
func pauseBolt(s store.Store, hook func()) bool {
	s.(checkedStore).beforeWrite = hook
	return false
}
