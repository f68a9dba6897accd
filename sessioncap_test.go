package caddysession

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// What a store failure does to the cap and to X-Session-Revoke: the cap's
// failure leaves the login done, a revocation's is the client's 503.

var errStoreDown = errors.New("store down")

// failingStore fails the operations it is told to with errStoreDown.
type failingStore struct {
	store.Store
	failList, failDelete bool
}

func (f *failingStore) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	if f.failList {
		return nil, errStoreDown
	}
	return f.Store.ListByIdentity(ctx, realm, key, value, now)
}

func (f *failingStore) Delete(ctx context.Context, hash session.Hash) error {
	if f.failDelete {
		return errStoreDown
	}
	return f.Store.Delete(ctx, hash)
}

// serveWith sends a request with the session ID id ("" for none) through
// h to an app that answers with commands ("Name: value"), and returns the
// response's header and ServeHTTP's error.
func serveWith(t *testing.T, h *Handler, id string, commands ...string) (http.Header, error) {
	t.Helper()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		for _, c := range commands {
			name, value, _ := strings.Cut(c, ":")
			w.Header().Add(name, strings.TrimSpace(value))
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	return serveID(h, id, next)
}

// issuedHash is the hash of the session ID a response's cookie issued.
func issuedHash(t *testing.T, hdr http.Header) session.Hash {
	t.Helper()
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			return session.HashID(c.Value)
		}
	}
	t.Fatalf("no session cookie issued: %v", hdr)
	return session.Hash{}
}

// wiredHandler is testHandler, wired as a config would be (its realm set).
func wiredHandler(t *testing.T) *Handler {
	t.Helper()
	h, _ := testHandler(t)
	if err := h.app.wired(); err != nil {
		t.Fatal(err)
	}
	return h
}

// isLive reports whether the session under hash is live.
func isLive(t *testing.T, h *Handler, hash session.Hash) bool {
	t.Helper()
	_, err := h.store.Load(context.Background(), hash, clock.Now(), h.timeouts)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestCapStoreFailure: a login whose cap the store fails to enforce is
// still a login; the next one enforces the cap.
func TestCapStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		list, del bool
	}{
		{"the listing fails", true, false},
		{"the deletion fails", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := wiredHandler(t)
			h.MaxSessionsPerIdentity = 1
			_, old := newSessionID()
			startSession(t, h, *old, clock.Now().Add(-time.Minute))
			f := &failingStore{Store: h.store, failList: tc.list, failDelete: tc.del}
			h.store = f

			hdr, err := serveWith(t, h, "", "X-Session-Set-User: alice")
			if err != nil {
				t.Fatalf("the login failed with the cap: %v", err)
			}
			first := issuedHash(t, hdr)
			if !isLive(t, h, *old) || !isLive(t, h, first) {
				t.Fatal("a session is gone, though the store failed")
			}

			f.failList, f.failDelete = false, false
			hdr, err = serveWith(t, h, "", "X-Session-Set-User: alice")
			if err != nil {
				t.Fatal(err)
			}
			second := issuedHash(t, hdr)
			if isLive(t, h, *old) || isLive(t, h, first) || !isLive(t, h, second) {
				t.Fatalf("after the next login: old %v, first %v, second %v; want only the second",
					isLive(t, h, *old), isLive(t, h, first), isLive(t, h, second))
			}
		})
	}
}

// TestRevokeStoreFailure: a revocation the store fails to find or to carry
// out is the client's 503; what the response applied with it depends on
// when the store failed, before anything (the listing) or after the rest
// (the deletion).
func TestRevokeStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		list, del bool
		status    int  // 0: no error
		revoked   bool // the other session ended
		cart      bool // the key set beside it was stored
	}{
		{name: "no failure", revoked: true, cart: true},
		{name: "the listing fails", list: true, status: http.StatusServiceUnavailable},
		{name: "the deletion fails", del: true, status: http.StatusServiceUnavailable, cart: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := wiredHandler(t)
			id, mine := newSessionID()
			startSession(t, h, *mine, clock.Now())
			_, other := newSessionID()
			startSession(t, h, *other, clock.Now())
			h.store = &failingStore{Store: h.store, failList: tc.list, failDelete: tc.del}

			_, err := serveWith(t, h, id, "X-Session-Revoke: "+other.Short(), "X-Session-Set-Cart: x")
			var he caddyhttp.HandlerError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("ServeHTTP: %v", err)
			case tc.status != 0 && (!errors.As(err, &he) || he.StatusCode != tc.status || !errors.Is(err, errStoreDown)):
				t.Fatalf("ServeHTTP = %v, want the store's failure as %d", err, tc.status)
			}
			if got := !isLive(t, h, *other); got != tc.revoked {
				t.Errorf("the other session revoked: %v, want %v", got, tc.revoked)
			}
			rec, err := h.store.Load(context.Background(), *mine, clock.Now(), h.timeouts)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := rec.Values["cart"]; ok != tc.cart {
				t.Errorf("the cart stored: %v, want %v", ok, tc.cart)
			}
		})
	}
}

// pausingStore holds every ListByIdentity until the test lets it go on,
// and says when one has begun.
type pausingStore struct {
	store.Store
	listing chan struct{} // a listing has begun
	proceed chan struct{} // let one listing go on
}

func (p *pausingStore) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	p.listing <- struct{}{}
	<-p.proceed
	return p.Store.ListByIdentity(ctx, realm, key, value, now)
}

// TestCapConcurrentLogins: two logins of a user at once, with a cap of
// one, both committed before either lists the user's sessions: the later
// ends the earlier, and the earlier does not end the later (which would
// leave the user with none).
func TestCapConcurrentLogins(t *testing.T) {
	h := wiredHandler(t)
	h.MaxSessionsPerIdentity = 1
	p := &pausingStore{Store: h.store, listing: make(chan struct{}), proceed: make(chan struct{})}
	h.store = p
	login := func(into chan<- http.Header) {
		hdr, err := serveWith(t, h, "", "X-Session-Set-User: alice")
		if err != nil {
			t.Error(err)
		}
		into <- hdr
	}
	earlier, later := make(chan http.Header, 1), make(chan http.Header, 1)
	go login(earlier)
	<-p.listing // the earlier login has committed
	go login(later)
	<-p.listing // and the later one too
	p.proceed <- struct{}{}
	p.proceed <- struct{}{}
	first, second := issuedHash(t, <-earlier), issuedHash(t, <-later)
	if isLive(t, h, first) || !isLive(t, h, second) {
		t.Fatalf("earlier login live: %v, later: %v; want only the later", isLive(t, h, first), isLive(t, h, second))
	}
}
