package caddysession

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/store"
)

func TestUnmarshalOnStoreError(t *testing.T) {
	checkSubdirective(t, []subdirectiveRow{
		{"on_store_error 503", `{"policy":"503"}`},
		{"on_store_error anonymous", `{"policy":"anonymous"}`},
		{"on_store_error Stale 5m", `{"policy":"stale","within":300000000000}`},
		{"on_store_error", ""},
		{"on_store_error stale", ""},
		{"on_store_error anonymous 5m", ""},
		{"on_store_error stale 5m 1m", ""},
	}, func(h *Handler) any { return h.OnStoreError })
}

func TestProvisionStoreErrors(t *testing.T) {
	cases := []struct {
		name   string
		config StoreErrorConfig
		want   storeErrorPolicy
		ok     bool
	}{
		{"default", StoreErrorConfig{}, policyUnavailable, true},
		{"503", StoreErrorConfig{Policy: "503"}, policyUnavailable, true},
		{"anonymous", StoreErrorConfig{Policy: "anonymous"}, policyAnonymous, true},
		{"stale", StoreErrorConfig{Policy: "stale", Within: caddy.Duration(time.Minute)}, policyStale, true},
		{"stale without a duration", StoreErrorConfig{Policy: "stale"}, 0, false},
		{"a duration without stale", StoreErrorConfig{Policy: "anonymous", Within: caddy.Duration(time.Minute)}, 0, false},
		{"unknown", StoreErrorConfig{Policy: "retry"}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := Handler{OnStoreError: &c.config, storeName: "test:" + c.name}
			err := h.provisionStoreErrors()
			if (err == nil) != c.ok {
				t.Fatalf("error %v, want ok %v", err, c.ok)
			}
			if h.stale != nil {
				t.Cleanup(func() { releaseStaleCopy(h.storeName) })
			}
			if c.ok && (h.storeErrors != c.want || (h.stale != nil) != (c.want == policyStale)) {
				t.Fatalf("policy %v, copy %v; want %v", h.storeErrors, h.stale != nil, c.want)
			}
		})
	}
}

// failingWrites is a store whose reads work and whose writes fail, as a
// bolt file on a disk that fails its writes: the touch a read makes is
// the write it cannot store.
type failingWrites struct{ store.Store }

func (failingWrites) Update(context.Context, store.Update) (store.Result, error) {
	return store.Result{}, errors.New("write /var/lib/caddy/session/sessions.db: input/output error")
}

// TestOnStoreErrorFailedTouch reads a session whose touch is due from a
// store that cannot write: under 503 the request fails; under anonymous
// and stale it is served with its session, without the touch. (A full
// disk does not make bolt's touches fail reliably: a touch reuses pages
// the file already has. Writes on a full disk are tested through a real
// Caddy in integration_test/storeerror_test.go.)
func TestOnStoreErrorFailedTouch(t *testing.T) {
	cases := []struct {
		policy string
		within time.Duration
		served bool
	}{
		{"503", 0, false},
		{"anonymous", 0, true},
		{"stale", time.Minute, true},
	}
	for _, c := range cases {
		t.Run(c.policy, func(t *testing.T) {
			h, id := benchHandlerWith(t, &Handler{OnStoreError: &StoreErrorConfig{Policy: c.policy, Within: caddy.Duration(c.within)}})
			h.store = failingWrites{h.store}
			clock.Advance(2 * time.Minute) // past touch_interval
			// The clock is the whole package's: the tests that check
			// signed tokens against the real time, run again after
			// this one under -count, must not find it moved.
			t.Cleanup(func() { clock.Advance(-2 * time.Minute) })
			u, _ := url.Parse("http://app.example.com/page")
			var saw string
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				saw = r.Header.Get("X-Session-User")
				w.WriteHeader(http.StatusOK)
				return nil
			})
			err := h.ServeHTTP(&discard{h: http.Header{}}, newBenchRequest(u, browserHeader(id)), next)
			var he caddyhttp.HandlerError
			switch {
			case c.served && err != nil:
				t.Fatalf("the read failed: %v", err)
			case !c.served && (!errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable):
				t.Fatalf("the read got %v, want a 503", err)
			case saw != benchValues["user"]:
				t.Fatalf("the app saw user %q, want %q", saw, benchValues["user"])
			}
		})
	}
}
