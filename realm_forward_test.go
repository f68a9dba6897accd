package caddysession

import (
	"testing"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestForwardRecordOfAnotherRealmDoesNotBlockALogin: an ID of another
// realm is unknown to a handler (SECURITY.md, "Strict session
// management": IDs "of another realm are anonymous; a login with one gets
// a new ID"; README on realm: "A handler only adopts sessions of its own
// realm"). An ID that another realm rotated away is such an ID: its
// forward record names that realm and leads to a session this handler
// would never adopt. Yet requestState.load sets moved for any forward
// record before it looks at the realm, and planCommit then drops a login
// as "rotated_away": a visitor of site B whose browser presents, beside
// nothing of B, a rotated-away cookie of site A (the same cookie name on
// a sibling site, a port of the same host, or a cookie tossed from a
// sibling subdomain) cannot log in to B at all.
func TestForwardRecordOfAnotherRealmDoesNotBlockALogin(t *testing.T) {
	h := provisionedHandler(t, func(h *Handler) { h.Realm = "site-b" })

	// Site A, on the same store, starts a session and renews it: its old
	// ID now holds a forward record of realm site-a.
	oldID, oldHash := newSessionID()
	if _, err := h.store.Update(t.Context(), store.Update{
		NewHash: oldHash, Patch: &session.Patch{Set: map[string]string{"cart": "x"}},
		Identity: h.identity, Realm: "site-a", Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
	}); err != nil {
		t.Fatal(err)
	}
	_, newHash := newSessionID()
	if _, err := h.store.Update(t.Context(), store.Update{
		Hash: *oldHash, HasHash: true, NewHash: newHash, Patch: &session.Patch{Renew: true},
		Identity: h.identity, Realm: "site-a", Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
	}); err != nil {
		t.Fatal(err)
	}

	// Control: a live session of site A is anonymous on site B, and a
	// login with its ID gets a new one.
	liveID := ""
	{
		id, hash := newSessionID()
		if _, err := h.store.Update(t.Context(), store.Update{
			NewHash: hash, Patch: &session.Patch{Set: map[string]string{"cart": "y"}},
			Identity: h.identity, Realm: "site-a", Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
		}); err != nil {
			t.Fatal(err)
		}
		liveID = id
	}
	hdr, err := serveWith(t, h, liveID, "X-Session-Set-User: bob")
	if err != nil {
		t.Fatal(err)
	}
	if got := issuedID(t, hdr); got == liveID {
		t.Fatal("the login adopted site A's ID")
	}

	// The rotated-away ID of site A: the login on site B must work too.
	hdr, err = serveWith(t, h, oldID, "X-Session-Set-User: bob")
	if err != nil {
		t.Fatal(err)
	}
	issued := false
	for _, c := range hdr.Values("Set-Cookie") {
		issued = issued || len(c) > 4 && c[:4] == "sid=" && c[4] != ';'
	}
	if !issued {
		t.Errorf("a login on site B presenting an ID that site A rotated away got no session (dropped as rotated_away); response header: %v", hdr)
	}
}
