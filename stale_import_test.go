package caddysession

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// TestStaleCopyForgetsWhatAnImportReplaces: an import that overwrites a
// session (a role taken away, through the admin API) must not leave its
// old values in the on_store_error stale copy, served once the store
// fails; an import that keeps what is stored leaves the copy as it is.
func TestStaleCopyForgetsWhatAnImportReplaces(t *testing.T) {
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	now := time.Now()
	limits := session.DefaultLimits()
	entry := func(hash session.Hash, role string) store.Entry {
		rec := timeouts.NewRecord(now)
		rec.Values = map[string]string{"user": "alice", "role": role}
		return store.Entry{Hash: hash, Record: rec, Identity: "user"}
	}
	for _, tc := range []struct {
		name      string
		overwrite bool
		wantCopy  bool
	}{
		{"an import that overwrites", true, false},
		{"an import that keeps what is stored", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "sessions.db"), bolt.Options{SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			hash := session.HashID("alice's id")
			ctx := context.Background()
			if _, err := db.Import(ctx, store.Import{Entries: []store.Entry{entry(hash, "admin")}, Now: now, Limits: limits}); err != nil {
				t.Fatal(err)
			}
			name := "test:stale-import-" + tc.name
			c := holdStaleCopy(name, 5*time.Minute)
			t.Cleanup(func() { releaseStaleCopy(name) })
			st := &staleStore{Store: db, copy: c, identity: "user", now: func() time.Time { return now }}
			if _, err := st.Load(ctx, hash, now, timeouts); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.get(hash, "user", timeouts, 5*time.Minute, now); !ok {
				t.Fatal("the load kept no copy")
			}
			if _, err := st.Import(ctx, store.Import{Entries: []store.Entry{entry(hash, "user")}, Now: now, Overwrite: tc.overwrite, Limits: limits}); err != nil {
				t.Fatal(err)
			}
			rec, ok := c.get(hash, "user", timeouts, 5*time.Minute, now)
			if ok != tc.wantCopy {
				t.Fatalf("after the import the copy serves the session: %v, want %v", ok, tc.wantCopy)
			}
			if ok && rec.Values["role"] != "admin" {
				t.Fatalf("the copy serves role %q", rec.Values["role"])
			}
			// A read after the import keeps the session as it now is.
			if _, err := st.Load(ctx, hash, now.Add(time.Second), timeouts); err != nil {
				t.Fatal(err)
			}
			want := map[bool]string{true: "user", false: "admin"}[tc.overwrite]
			if rec, ok := c.get(hash, "user", timeouts, 5*time.Minute, now.Add(time.Second)); !ok || rec.Values["role"] != want {
				t.Fatalf("a read after the import left the copy at %v (%v), want role %q", rec, ok, want)
			}
		})
	}
}
