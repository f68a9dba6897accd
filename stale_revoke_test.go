package caddysession

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/store"
)

// revokeRacer is a store whose DeleteByIdentity lets during run first,
// as a request of the user's does that the store answers while a
// revocation by user is under way (Redis's reads and deletes one session
// at a time; a bolt revocation waiting for the write lock).
type revokeRacer struct {
	store.Store
	during func()
}

func (r revokeRacer) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	r.during()
	return r.Store.DeleteByIdentity(ctx, realm, key, value)
}

// TestStaleCopyAfterALogoutEverywhereItRaced: on_store_error stale never
// serves from its copy a session this Caddy saw end, "even to a request
// that read it before it ended" (README, "When the store is down"). A
// logout everywhere tombstones every session of the user when it begins;
// a request of the user's other device that the store answers while it
// runs, after that tombstone and before the store ends its session, puts
// the session, or the one its renewal moved it to, in the copy at a later
// time than the tombstone's. The store then ends it; when the store
// fails, that device's ID must not be served its session from the copy.
// A login as someone else meanwhile is theirs, and still served.
func TestStaleCopyAfterALogoutEverywhereItRaced(t *testing.T) {
	for _, c := range []struct {
		name    string
		command string // the laptop's request's, while the logout runs
		renews  bool   // it gives the session a new ID
		// owner: whose session the laptop's ID has after the logout,
		// "" for none.
		owner string
	}{
		{"a read", "", false, ""},
		{"a renewal", "X-Session-Renew: true", true, ""},
		{"a login as another user", "X-Session-Set-User: bob", true, "bob"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := provisionedHandler(t, func(h *Handler) {
				h.OnStoreError = &StoreErrorConfig{Policy: "stale", Within: caddy.Duration(5 * time.Minute)}
			})
			t.Cleanup(func() { _ = h.Cleanup() })
			stale := h.store.(*staleStore)
			racer := &revokeRacer{Store: stale.Store}
			inner := &unreadable{Store: racer}
			stale.Store = inner

			login := func() string {
				hdr, err := serveWith(t, h, "", "X-Session-Set-User: alice")
				if err != nil {
					t.Fatal(err)
				}
				return issuedID(t, hdr)
			}
			laptop, phone := login(), login()
			racer.during = func() {
				racer.during = func() {}
				var commands []string
				if c.command != "" {
					commands = append(commands, c.command)
				}
				hdr, err := serveWith(t, h, laptop, commands...)
				if err != nil {
					t.Fatal(err)
				}
				if c.renews {
					laptop = issuedID(t, hdr)
				}
			}
			if _, err := serveWith(t, h, phone, "X-Session-Destroy-All: true"); err != nil {
				t.Fatal(err)
			}

			inner.down = true
			var saw string
			_, err := serveID(h, laptop, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				saw = r.Header.Get("X-Session-User")
				w.WriteHeader(http.StatusOK)
				return nil
			}))
			if saw != c.owner {
				t.Fatalf("after %s of the laptop raced alice's logout everywhere, its ID was served %q's session from the stale copy while the store failed, want %q", c.name, saw, c.owner)
			}
			var he caddyhttp.HandlerError
			if c.owner == "" && (!errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable) {
				t.Fatalf("the laptop's request got %v, want a 503 (no copy to serve)", err)
			}
		})
	}
}
