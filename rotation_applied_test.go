package caddysession

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

func hashOf(id string) session.Hash { return session.HashID(id) }

// opens reports whether id opens a session: one is stored under its hash,
// and not a forward record, which no request adopts.
func opens(t *testing.T, h *Handler, id string) bool {
	t.Helper()
	rec, err := h.store.Load(context.Background(), hashOf(id), clock.Now(), h.timeouts)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil && !rec.Forwarded()
}

// interleavingStore runs between once, the first time an Update is about
// to be applied that the test picks: another request that the test drives
// to completion there, after the handler made its last decision on the
// session and before the store applies it.
type interleavingStore struct {
	store.Store
	mu      sync.Mutex
	pick    func(u store.Update) bool
	between func()
}

func (s *interleavingStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	s.mu.Lock()
	run := s.between
	if run != nil && s.pick(u) {
		s.between = nil
	} else {
		run = nil
	}
	s.mu.Unlock()
	if run != nil {
		run()
	}
	return s.Store.Update(ctx, u)
}

// rotationHandler is a wired handler on bolt with renew_on user role.
func rotationHandler(t *testing.T) *Handler {
	t.Helper()
	return provisionedHandler(t, func(h *Handler) { h.RenewOn = []string{"user", "role"} })
}

// newIDIn is the session ID a response's cookie issued, "" if none.
func newIDIn(hdr http.Header) string {
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// TestRotationDecidedOnTheSessionAsApplied: the handler decides whether a
// response rotates the session on the session as it read it, and the
// store applies the response to the session as it stands then. Another
// request that changes, in between, what a rotation hangs on (a renew_on
// key, the persistence) and rotates the session, leaves the response
// applied to a successor it differs from: it must rotate there, not
// change a privilege, or the persistence, under the ID issued for the
// other value, nor be dropped with a 200. The other request runs after
// every read of this one (settleRemember's too): only the store sees it.
func TestRotationDecidedOnTheSessionAsApplied(t *testing.T) {
	cases := []struct {
		name        string
		login       []string
		other, last []string
		key, value  string // what the session holds in the end
		remembered  bool
	}{
		{
			name:  "forget with a key across a remember",
			login: []string{"X-Session-Set-User: alice"},
			other: []string{"X-Session-Remember: true"},
			last:  []string{"X-Session-Remember: false", "X-Session-Set-Cart: pear"},
			key:   "cart", value: "pear",
		},
		{
			name:  "remember with a key across a forget",
			login: []string{"X-Session-Set-User: alice", "X-Session-Remember: true"},
			other: []string{"X-Session-Remember: false"},
			last:  []string{"X-Session-Remember: true", "X-Session-Set-Cart: pear"},
			key:   "cart", value: "pear", remembered: true,
		},
		{
			name:  "elevation across a demotion",
			login: []string{"X-Session-Set-User: alice", "X-Session-Set-Role: admin"},
			other: []string{"X-Session-Set-Role: user"},
			last:  []string{"X-Session-Set-Role: admin"},
			key:   "role", value: "admin",
		},
		{
			name:  "removal across an elevation",
			login: []string{"X-Session-Set-User: alice"},
			other: []string{"X-Session-Set-Role: admin"},
			last:  []string{"X-Session-Delete: role", "X-Session-Set-Cart: pear"},
			key:   "cart", value: "pear",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := rotationHandler(t)
			hdr, err := serveWith(t, h, "", tc.login...)
			if err != nil {
				t.Fatal(err)
			}
			loaded := newIDIn(hdr)
			var other string
			h.store = &interleavingStore{
				Store: h.store,
				pick:  func(u store.Update) bool { return u.HasHash && u.Patch.Changes() },
				between: func() {
					hdr, err := serveWith(t, h, loaded, tc.other...)
					if err != nil {
						t.Error(err)
					}
					if other = newIDIn(hdr); other == "" {
						t.Errorf("the other request (%v) issued no new ID: %v", tc.other, hdr)
					}
				},
			}
			hdr, err = serveWith(t, h, loaded, tc.last...)
			if err != nil {
				t.Fatal(err)
			}
			last := newIDIn(hdr)
			if last == "" || last == other || last == loaded {
				t.Fatalf("the response that answered last (%v) set %q: want a new ID of its own, since it changes what the other request left", tc.last, hdr.Values("Set-Cookie"))
			}
			for _, id := range []string{loaded, other} {
				if opens(t, h, id) {
					t.Errorf("an ID from before the last response still opens the session")
				}
			}
			rec, err := h.store.Load(context.Background(), hashOf(last), clock.Now(), h.timeouts)
			if err != nil {
				t.Fatalf("the session under the last response's ID: %v", err)
			}
			if rec.Values[tc.key] != tc.value || rec.Remembered != tc.remembered || rec.Values["user"] != "alice" {
				t.Fatalf("the session is %v, remembered %v; want %s=%s, remembered %v, still alice's", rec.Values, rec.Remembered, tc.key, tc.value, tc.remembered)
			}
			if _, ok := rec.Values["role"]; ok && tc.key != "role" {
				t.Fatalf("the session still holds role: %v", rec.Values)
			}
		})
	}
}
