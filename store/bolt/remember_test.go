package bolt

import (
	"path/filepath"
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestRemember runs the remember-me suite with the cache on and off, and
// with touches written at once: every write of a remembered session, a
// deferred touch included, keeps it remembered.
func TestRemember(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"cache", Options{SweepInterval: -1}},
		{"no cache", Options{SweepInterval: -1, CacheRecords: -1}},
		{"touches at once", Options{SweepInterval: -1, TouchDelay: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Remember(t, func(t *testing.T) store.Store {
				s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				return checkedStore{s, t}
			})
		})
	}
}
