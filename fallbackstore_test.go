package caddysession

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

func TestUnmarshalFallbackStore(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser("session {\n store redis redis://127.0.0.1:6379\n fallback_store bolt /var/lib/sessions.db {\n lock_timeout 2s\n }\n}")
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := `{"backend":"bolt","lock_timeout":2000000000,"path":"/var/lib/sessions.db"}`
	if !jsonEqual(t, string(h.FallbackStoreRaw), want) {
		t.Fatalf("fallback_store = %s, want %s", h.FallbackStoreRaw, want)
	}
	for _, bad := range []string{"session {\n fallback_store \n}", "session {\n fallback_store cassandra \n}"} {
		if err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

// TestFallbackStoreIsNotTheStore refuses a fallback_store that names the
// store itself: every session would be copied onto itself.
func TestFallbackStoreIsNotTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	raw, _ := json.Marshal(map[string]any{"backend": "bolt", "path": path, "no_sync": true})
	h := &Handler{StoreRaw: raw, FallbackStoreRaw: raw}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "fallback_store is the store itself") {
		t.Fatalf("error %v, want fallback_store refused", err)
	}
}

// TestMigrateCursor pages through the fallback stores of a store in turn:
// with one, the cursor is that store's own; with several, it names the
// store it is of, and ends after the last store's last page.
func TestMigrateCursor(t *testing.T) {
	cases := []struct {
		name    string
		i       int
		next    string
		n       int
		want    string
		wantI   int
		wantOwn string
	}{
		{"one store, a page follows", 0, "abc", 1, "abc", 0, "abc"},
		{"one store, the last page", 0, "", 1, "", 0, ""},
		{"first of two, a page follows", 0, "abc", 2, "0/abc", 0, "abc"},
		{"first of two, its last page", 0, "", 2, "1/", 1, ""},
		{"second of two, a page follows", 1, "001:ab/c", 2, "1/001:ab/c", 1, "001:ab/c"},
		{"second of two, its last page", 1, "", 2, "", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := migrateCursor(tc.i, tc.next, tc.n)
			if got != tc.want {
				t.Fatalf("cursor %q, want %q", got, tc.want)
			}
			i, own, ok := parseMigrateCursor(got, tc.n)
			if !ok || i != tc.wantI || own != tc.wantOwn {
				t.Fatalf("cursor %q reads as store %d, cursor %q, %v; want store %d, cursor %q", got, i, own, ok, tc.wantI, tc.wantOwn)
			}
		})
	}
	for _, bad := range []string{"abc", "2/abc", "-1/abc", "x/abc"} {
		if _, _, ok := parseMigrateCursor(bad, 2); ok {
			t.Errorf("cursor %q of two stores read as good", bad)
		}
	}
}

// TestAdminStoreCopiesOnlyWhileTheMoveIsOn: the admin API reads a store
// with fallback_store through a Fallback of its own (liveStore), which
// must ask the handler, as the handler's own does, whether the move is
// still on before it copies a session from the old store. Once the move
// is over, the old store may hold sessions that ended in the new one
// since: an admin request in flight across that reload copied one back.
func TestAdminStoreCopiesOnlyWhileTheMoveIsOn(t *testing.T) {
	dir := t.TempDir()
	newRaw, _ := json.Marshal(map[string]any{"backend": "bolt", "path": filepath.Join(dir, "new.db"), "no_sync": true})
	oldRaw, _ := json.Marshal(map[string]any{"backend": "bolt", "path": filepath.Join(dir, "old.db"), "no_sync": true})
	h := provisionedHandler(t, func(h *Handler) { h.StoreRaw, h.FallbackStoreRaw = newRaw, oldRaw })
	_, hash := newSessionID()
	now := clock.Now()
	if _, err := h.fallback.Old.Update(t.Context(), store.Update{NewHash: hash, Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
		Identity: "user", Now: now, Timeouts: h.timeouts, Limits: h.limits}); err != nil {
		t.Fatal(err)
	}
	// The reload that removes fallback_store: the move is over.
	moveMu.Lock()
	h.unwatch()
	moveMu.Unlock()
	t.Cleanup(func() {
		moveMu.Lock()
		h.watch()
		moveMu.Unlock()
	})
	if _, err := newLiveStore([]*Handler{h}).store.Load(t.Context(), *hash, now, h.timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the admin store's load after the move: %v, want ErrNotFound (no copy from the old store)", err)
	}
	if _, err := h.fallback.New.Load(t.Context(), *hash, now, h.timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the new store holds the session after the move ended: %v; the admin store copied it back", err)
	}
}
