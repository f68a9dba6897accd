package bolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestMetadata runs the metadata suite with the cache on and off: the
// cache hands out copies of what it holds, flash values included.
func TestMetadata(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{
		{"cache", 0},
		{"no cache", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Metadata(t, func(t *testing.T) store.Store {
				s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, CacheRecords: tc.cache})
				if err != nil {
					t.Fatal(err)
				}
				return checkedStore{s, t}
			}, putRecord)
		})
	}
}

// putRecord is storetest.Put by Put.
func putRecord(t *testing.T, s store.Store, hash session.Hash, rec *session.Record, identity string, _ time.Time) {
	t.Helper()
	if err := s.(checkedStore).Put(t.Context(), []store.Entry{{Hash: hash, Record: rec.Clone()}}, identity); err != nil {
		t.Fatal(err)
	}
}
