package caddysession

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/store"
)

// gatedStore holds every Update until the test lets it go.
type gatedStore struct {
	store.Store
	entered chan struct{} // an Update began
	release chan struct{} // let it go on
}

func (g *gatedStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	close(g.entered)
	<-g.release
	return g.Store.Update(ctx, u)
}

// headerWatch is a ResponseWriter that says when the response's header
// goes out.
type headerWatch struct {
	h    http.Header
	sent chan int
}

func (w *headerWatch) Header() http.Header { return w.h }
func (w *headerWatch) WriteHeader(code int) {
	select {
	case w.sent <- code:
	default:
	}
}
func (w *headerWatch) Write(b []byte) (int, error) { w.WriteHeader(http.StatusOK); return len(b), nil }

// TestLoginResponseWaitsForTheCommit: the response of a login (a new
// session's cookie) is not sent while the store has not committed it; it
// goes out once the commit returns. On bolt the commit returns after
// bbolt's fsync (store/bolt TestWriteReturnsAfterTheCommit), so a response
// that says a session exists is never sent before the session is durable.
func TestLoginResponseWaitsForTheCommit(t *testing.T) {
	cfg, _ := json.Marshal(map[string]any{"backend": "bolt", "path": filepath.Join(t.TempDir(), "sessions.db")})
	h := &Handler{StoreRaw: cfg}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	gate := &gatedStore{Store: h.store, entered: make(chan struct{}), release: make(chan struct{})}
	h.store = gate
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Set-User", "alice")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	u, _ := url.Parse("http://app.example.com/login")
	w := &headerWatch{h: http.Header{}, sent: make(chan int, 1)}
	served := make(chan error, 1)
	go func() { served <- h.ServeHTTP(w, newBenchRequest(u, http.Header{}), next) }()

	<-gate.entered
	select {
	case code := <-w.sent:
		t.Fatalf("the response (%d) went out while the login was not committed", code)
	default:
	}
	close(gate.release)
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if code := <-w.sent; code != http.StatusOK || w.h.Get("Set-Cookie") == "" {
		t.Fatalf("after the commit: %d, cookie %q", code, w.h.Get("Set-Cookie"))
	}
}
