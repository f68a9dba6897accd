package caddysession

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/store/bolt"
)

// TestBoltNoSyncFollowsTheConfigs: the configs that share a bolt file
// (the old and the new one during a reload, or two handlers of one
// config) may differ on no_sync, and the file is opened once, by the
// first. Commits are synced unless every config that holds the file says
// no_sync: a reload that removes no_sync makes commits durable again at
// once, not at the next restart, and one that adds it speeds them up once
// the old config is gone.
func TestBoltNoSyncFollowsTheConfigs(t *testing.T) {
	cases := []struct {
		name        string
		old, new    bool // their no_sync
		both, after bool // NoSync while both hold the file, and once old is cleaned up
	}{
		{"reload removes no_sync", true, false, false, false},
		{"reload adds no_sync", false, true, false, true},
		{"no_sync kept", true, true, true, true},
		{"sync kept", false, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.db")
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			old := &BoltStore{Path: path, NoSync: c.old}
			if err := old.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			next := &BoltStore{Path: path, NoSync: c.new}
			if err := next.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			defer next.Cleanup()
			db := openBolt(t, next)
			if got := db.NoSync(); got != c.both {
				t.Errorf("while both configs hold the file, NoSync = %v, want %v", got, c.both)
			}
			if err := old.Cleanup(); err != nil {
				t.Fatal(err)
			}
			if got := db.NoSync(); got != c.after {
				t.Errorf("after the old config is cleaned up, NoSync = %v, want %v", got, c.after)
			}
		})
	}
}

// openBolt returns the database a provisioned BoltStore holds.
func openBolt(t *testing.T, b *BoltStore) *bolt.Store {
	t.Helper()
	st, borrowed, err := b.ref.acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer b.ref.done(borrowed)
	return st.(*bolt.Store)
}
