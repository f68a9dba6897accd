package caddysession

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestDevicesFailureKeepsTheFlash: a navigation of a session holding a
// flash value, on a page that lists the devices, whose listing fails: the
// client gets the store's 503, and the flash value stays in the store for
// the next page, as for any 503 of the plugin.
func TestDevicesFailureKeepsTheFlash(t *testing.T) {
	h := wiredHandler(t)
	h.devices = caddyhttp.MatcherSets{{&countingMatcher{match: func(*http.Request) (bool, error) { return true, nil }}}}
	id, hash := newSessionID()
	startSession(t, h, *hash, clock.Now().Add(-time.Second))
	setFlash(t, h, *hash, map[string]string{"notice": "Saved"})
	h.store = &failingStore{Store: h.store, failList: true}

	reached := false
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		reached = true
		w.WriteHeader(http.StatusOK)
		return nil
	})
	u, _ := url.Parse("http://app.example.com/account/devices")
	err := h.ServeHTTP(&discard{h: http.Header{}}, newBenchRequest(u, http.Header{
		"Cookie": {"sid=" + id}, "Sec-Fetch-Mode": {"navigate"},
	}), next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || reached {
		t.Fatalf("ServeHTTP = %v, app reached: %v; want the store's 503 before the app", err, reached)
	}
	rec, err := h.store.Load(context.Background(), *hash, clock.Now(), h.timeouts)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"notice": "Saved"}; !maps.Equal(rec.Flash, want) {
		t.Fatalf("after the failed request the session holds flash values %v, want %v", rec.Flash, want)
	}
}
