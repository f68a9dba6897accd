package caddysession

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// provisionedHandler is a handler on a fresh bolt file, with the settings
// set makes before it is provisioned, wired as a config would be.
func provisionedHandler(t *testing.T, set func(h *Handler)) *Handler {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"backend": "bolt", "path": filepath.Join(t.TempDir(), "sessions.db"), "no_sync": true,
	})
	h := &Handler{StoreRaw: cfg}
	if set != nil {
		set(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.app.wired(); err != nil {
		t.Fatal(err)
	}
	return h
}

// issuedID is the session ID a response's cookie issued.
func issuedID(t *testing.T, hdr http.Header) string {
	t.Helper()
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			return c.Value
		}
	}
	t.Fatalf("no session cookie issued: %v", hdr)
	return ""
}

// TestIdentityKeyInTheOtherSpelling: keys that differ only in '_' and '-'
// are one key (README, "The header protocol"), and the handler finds the
// user of a session by its identity key in either spelling (rules.identityOf).
// With renew_on user_id, an app that logs in with X-Session-Set-User-Id
// (the spelling a PHP header() or any framework writes) stores the key
// user-id: the session is a session of that user for the handler, yet the
// identity index, built by Record.IndexedIdentity with the exact spelling,
// does not hold it. "Log out everywhere", revocation by user through the
// admin API, max_sessions_per_identity and devices then miss the user's
// other sessions.
func TestIdentityKeyInTheOtherSpelling(t *testing.T) {
	h := provisionedHandler(t, func(h *Handler) { h.RenewOn = []string{"user_id"} })

	laptop, err := serveWith(t, h, "", "X-Session-Set-User-Id: alice")
	if err != nil {
		t.Fatal(err)
	}
	phone, err := serveWith(t, h, "", "X-Session-Set-User-Id: alice")
	if err != nil {
		t.Fatal(err)
	}
	phoneHash := issuedHash(t, phone)

	listed, err := h.store.ListByIdentity(t.Context(), h.realm, h.identity, "alice", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Errorf("the identity index lists %d sessions of alice; want her 2", len(listed))
	}

	// Log out everywhere, from the laptop.
	if _, err := serveWith(t, h, issuedID(t, laptop), "X-Session-Destroy-All: true"); err != nil {
		t.Fatal(err)
	}
	if isLive(t, h, phoneHash) {
		t.Errorf("X-Session-Destroy-All from alice's laptop left her phone's session %s live", phoneHash.Short())
	}
}
