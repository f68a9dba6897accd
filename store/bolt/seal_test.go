package bolt

import (
	"path/filepath"
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestSealed runs the suite of sealed values with the cache and deferred
// touches on and off: a deferred touch keeps every ciphertext.
func TestSealed(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"defaults", Options{SweepInterval: -1}},
		{"no cache, touches at once", Options{SweepInterval: -1, CacheRecords: -1, TouchDelay: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Sealed(t, func(t *testing.T) store.Store {
				s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				return checkedStore{s, t}
			})
		})
	}
}
