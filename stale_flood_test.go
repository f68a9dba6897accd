package caddysession

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

// TestStaleCopySurvivesUnknownIDs: a client that presents well-formed IDs
// the store does not know, six a request, has each load tombstone its
// hash in the stale copy. Past maxStaleTombstones of them the copy used to
// forget every session it held, so that an anonymous client with about
// 11,000 requests took away what on_store_error stale promises signed-in
// users ("keeps signed-in users reading for the duration") just before an
// outage. A tombstone of a session the copy does not hold only keeps a
// read in flight from keeping it; the copy must serve alice after the
// flood.
func TestStaleCopySurvivesUnknownIDs(t *testing.T) {
	h, inner := staleHandler(t)

	login, err := serveWith(t, h, "", "X-Session-Set-User: alice")
	if err != nil {
		t.Fatal(err)
	}
	alice := issuedID(t, login)
	if _, err := serveWith(t, h, alice); err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse("http://app.example.com/")
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		return nil
	})
	for range maxStaleTombstones/session.MaxCandidates + 2 {
		cookies := make([]string, session.MaxCandidates)
		for i := range cookies {
			cookies[i] = "sid=" + session.NewID()
		}
		w := &discard{h: http.Header{}}
		if err := h.ServeHTTP(w, newBenchRequest(u, http.Header{"Cookie": {strings.Join(cookies, "; ")}}), next); err != nil {
			t.Fatal(err)
		}
	}

	inner.down = true
	var saw string
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		saw = r.Header.Get("X-Session-User")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if _, err := serveID(h, alice, app); err != nil || saw != "alice" {
		t.Fatalf("after a flood of unknown IDs, with the store down, alice's request got %v and the app saw user %q; want her session served from the stale copy", err, saw)
	}
}
