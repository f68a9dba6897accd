package caddysession

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// unreadable is a store whose loads fail once down is set, as Redis's do
// while it is away.
type unreadable struct {
	store.Store
	down bool
}

func (u *unreadable) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	if u.down {
		return nil, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	return u.Store.Load(ctx, hash, now, t)
}

// serveID sends one request with the session ID id through h to next, and
// returns the response's header and ServeHTTP's error.
func serveID(h *Handler, id string, next caddyhttp.Handler) (http.Header, error) {
	u, _ := url.Parse("http://app.example.com/")
	header := http.Header{}
	if id != "" {
		header.Set("Cookie", "sid="+id)
	}
	w := &discard{h: http.Header{}}
	err := h.ServeHTTP(w, newBenchRequest(u, header), next)
	return w.h, err
}

// TestStaleCopyAfterAnEndThatFollowedARenewal: on_store_error stale
// never serves from its copy a session this Caddy saw end
// (StoreErrorConfig: "A session this Caddy saw end (a logout, a rotation,
// ...) is never served from the copy"). A request in flight across a
// renewal reaches the renewed session through the forward record: a
// logout ends it (SECURITY.md, "a logout racing a renewal ends the renewed
// session"), a renewal moves it to another ID. staleStore.Update
// tombstones only the hash the request presented (u.Hash), not the
// successor it ended or moved away, which this Caddy itself wrote and
// keeps in the copy: when the store then fails, a request with the
// renewed ID is served that session from the copy.
func TestStaleCopyAfterAnEndThatFollowedARenewal(t *testing.T) {
	for _, c := range []struct{ name, command string }{
		{"a logout", "X-Session-Destroy: true"},
		{"a renewal", "X-Session-Renew: true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := provisionedHandler(t, func(h *Handler) {
				h.OnStoreError = &StoreErrorConfig{Policy: "stale", Within: caddy.Duration(5 * time.Minute)}
			})
			t.Cleanup(func() { _ = h.Cleanup() })
			stale, ok := h.store.(*staleStore)
			if !ok {
				t.Fatalf("the handler's store is %T, not the stale copy's", h.store)
			}
			inner := &unreadable{Store: stale.Store}
			stale.Store = inner

			login, err := serveWith(t, h, "", "X-Session-Set-User: alice")
			if err != nil {
				t.Fatal(err)
			}
			first := issuedID(t, login)

			// A request loads the session, and while its app runs,
			// another request of the same browser renews it; the first
			// one's command then reaches the renewed session.
			var renewed string
			inFlight := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				hdr, err := serveWith(t, h, first, "X-Session-Renew: true")
				if err != nil {
					return err
				}
				renewed = issuedID(t, hdr)
				name, value, _ := strings.Cut(c.command, ":")
				w.Header().Set(name, strings.TrimSpace(value))
				w.WriteHeader(http.StatusOK)
				return nil
			})
			if _, err := serveID(h, first, inFlight); err != nil {
				t.Fatal(err)
			}
			rec, err := inner.Store.Load(t.Context(), session.HashID(renewed), clock.Now(), h.timeouts)
			if err == nil && !rec.Forwarded() {
				t.Fatalf("%s in flight left the renewed session where it was", c.name)
			}

			// The store fails; the renewed ID is presented (another tab,
			// or whoever copied the cookie).
			inner.down = true
			var saw string
			app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				saw = r.Header.Get("X-Session-User")
				w.WriteHeader(http.StatusOK)
				return nil
			})
			_, err = serveID(h, renewed, app)
			if saw != "" {
				t.Fatalf("after %s, the renewed ID was served its session from the stale copy while the store failed: the app saw X-Session-User: %s", c.name, saw)
			}
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("the request with the renewed ID got %v, want a 503 (no copy to serve)", err)
			}
		})
	}
}
