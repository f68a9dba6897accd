package caddysession

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// BenchmarkReadPathSealed is BenchmarkReadPath with seal_values on: the
// same session of 3 keys, stored sealed, which the load opens with the
// key its ID gives (an HKDF and an XChaCha20-Poly1305 open per value).
func BenchmarkReadPathSealed(b *testing.B) {
	h, id := benchHandlerWith(b, &Handler{SealValues: &SealConfig{IndexKey: "benchmark index secret of 32 bytes or more"}})
	if rec, err := h.store.Load(context.Background(), session.HashID(id), clock.Now(), h.timeouts); err != nil || !rec.Sealed {
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
