package caddysession

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// BenchmarkReadPathSealed is BenchmarkReadPath with seal_values on: the
// same session of 3 keys, stored sealed, which the load opens with the
// key its ID gives (an HKDF and an XChaCha20-Poly1305 open per value).
func BenchmarkReadPathSealed(b *testing.B) {
	cfg, _ := json.Marshal(map[string]any{
		"backend": "bolt",
		"path":    filepath.Join(b.TempDir(), "sessions.db"),
		"no_sync": true,
	})
	h := &Handler{StoreRaw: cfg, SealValues: &SealConfig{IndexKey: "benchmark index secret of 32 bytes or more"}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		b.Fatal(err)
	}
	id, hash := newSessionID()
	_, err := h.store.Update(ctx, store.Update{
		NewHash:  hash,
		Patch:    &session.Patch{Set: maps.Clone(benchValues)},
		Identity: h.identity, Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
		Seal: &store.Sealing{NewKey: session.DeriveSealKey(id), Index: h.sealIndex},
	})
	if err != nil {
		b.Fatal(err)
	}
	if rec, err := h.store.Load(ctx, *hash, clock.Now(), h.timeouts); err != nil || !rec.Sealed {
		b.Fatalf("the session is not stored sealed: %v", err)
	}
	runBench(b, func(w http.ResponseWriter, r *http.Request) error {
		return h.ServeHTTP(w, r, app)
	}, browserHeader(id), func(r *http.Request) {
		if r.Header.Get("X-Session-User") != benchValues["user"] {
			b.Fatalf("the session was not forwarded: %v", r.Header)
		}
	})
}
