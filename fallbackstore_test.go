package caddysession

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
