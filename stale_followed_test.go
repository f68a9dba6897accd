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

// staleHandler is a handler with on_store_error stale (5 minutes) whose
// store, under the copy, can be made unreadable.
func staleHandler(t *testing.T) (*Handler, *unreadable) {
	t.Helper()
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
	return h, inner
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
// renewal, or several, reaches the renewed session through the forward
// records: a logout ends it (SECURITY.md, "a logout racing a renewal ends
// the renewed session"), a renewal or a login moves it to another ID.
// staleStore.Update must tombstone the successor it ended or moved away
// (store.Result.Acted), not only the hash the request presented (u.Hash):
// this Caddy itself wrote the successor and keeps it in the copy, and
// when the store then fails, a request with the renewed ID would be
// served that session from the copy.
func TestStaleCopyAfterAnEndThatFollowedARenewal(t *testing.T) {
	for _, c := range []struct {
		name     string
		renewals int // while the first request's app runs
		command  string
		// kept: the command wrote the renewed session where it was, which
		// the copy still serves: nothing ended, nothing is forgotten.
		kept bool
	}{
		{"a logout", 1, "X-Session-Destroy: true", false},
		{"a renewal", 1, "X-Session-Renew: true", false},
		{"a logout after two renewals", 2, "X-Session-Destroy: true", false},
		{"a login", 1, "X-Session-Set-User: bob", false},
		{"a logout everywhere", 1, "X-Session-Destroy-All: true", false},
		{"a write", 1, "X-Session-Set-Cart: 1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, inner := staleHandler(t)

			login, err := serveWith(t, h, "", "X-Session-Set-User: alice")
			if err != nil {
				t.Fatal(err)
			}
			first := issuedID(t, login)

			// A request loads the session, and while its app runs,
			// another request of the same browser renews it (each
			// renewal presenting the ID the one before issued); the
			// first one's command then reaches the renewed session
			// through the forward records.
			var renewed []string
			inFlight := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				id := first
				for range c.renewals {
					hdr, err := serveWith(t, h, id, "X-Session-Renew: true")
					if err != nil {
						return err
					}
					id = issuedID(t, hdr)
					renewed = append(renewed, id)
				}
				name, value, _ := strings.Cut(c.command, ":")
				w.Header().Set(name, strings.TrimSpace(value))
				w.WriteHeader(http.StatusOK)
				return nil
			})
			if _, err := serveID(h, first, inFlight); err != nil {
				t.Fatal(err)
			}
			last := renewed[len(renewed)-1]
			rec, err := inner.Store.Load(t.Context(), session.HashID(last), clock.Now(), h.timeouts)
			if moved := err != nil || rec.Forwarded(); moved == c.kept {
				t.Fatalf("%s in flight: the renewed session moved or ended: %v, want %v", c.name, moved, !c.kept)
			}

			// The store fails; a renewed ID is presented (another tab,
			// or whoever copied the cookie).
			inner.down = true
			for i, id := range renewed {
				if c.kept && id == last {
					continue // below
				}
				var saw string
				app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					saw = r.Header.Get("X-Session-User")
					w.WriteHeader(http.StatusOK)
					return nil
				})
				_, err = serveID(h, id, app)
				if saw != "" {
					t.Fatalf("after %s, renewed ID %d of %d was served its session from the stale copy while the store failed: the app saw X-Session-User: %s", c.name, i+1, len(renewed), saw)
				}
				var he caddyhttp.HandlerError
				if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("the request with renewed ID %d of %d got %v, want a 503 (no copy to serve)", i+1, len(renewed), err)
				}
			}
			if c.kept {
				var saw, cart string
				app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					saw, cart = r.Header.Get("X-Session-User"), r.Header.Get("X-Session-Cart")
					w.WriteHeader(http.StatusOK)
					return nil
				})
				if _, err := serveID(h, last, app); err != nil || saw != "alice" || cart != "1" {
					t.Fatalf("after %s, the renewed ID, still the session, got %v and the app saw user %q, cart %q; want it served from the copy as written", c.name, err, saw, cart)
				}
			}
		})
	}
}

// TestStaleCopyAfterARevocationThatFollowedARenewal: a revocation by hash
// (the admin API's, X-Session-Revoke, the evictions of
// max_sessions_per_identity: all Handler.deleteFollowing) of a session
// renewed since it was listed ends the successor through the forward
// record, deleting hop by hop through the handler's store, which
// tombstones each hash as it goes: the copy forgets the successor too.
func TestStaleCopyAfterARevocationThatFollowedARenewal(t *testing.T) {
	h, inner := staleHandler(t)

	login, err := serveWith(t, h, "", "X-Session-Set-User: alice")
	if err != nil {
		t.Fatal(err)
	}
	listed := issuedID(t, login)
	hdr, err := serveWith(t, h, listed, "X-Session-Renew: true")
	if err != nil {
		t.Fatal(err)
	}
	renewed := issuedID(t, hdr)
	anyone := func(*session.Record) bool { return true }
	if _, _, err := deleteFollowing(t.Context(), h.store, h.timeouts, session.HashID(listed), clock.Now(), anyone); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Store.Load(t.Context(), session.HashID(renewed), clock.Now(), h.timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the revocation, loading the renewed session: %v, want it gone", err)
	}

	inner.down = true
	_, err = serveID(h, renewed, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if user := r.Header.Get("X-Session-User"); user != "" {
			t.Errorf("the renewed ID was served its session from the stale copy after its revocation: the app saw X-Session-User: %s", user)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}))
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the request with the renewed ID got %v, want a 503 (no copy to serve)", err)
	}
}
