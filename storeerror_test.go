package caddysession

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalOnStoreError(t *testing.T) {
	cases := []struct {
		line, want string // want "" for an error
	}{
		{"on_store_error 503", `{"policy":"503"}`},
		{"on_store_error anonymous", `{"policy":"anonymous"}`},
		{"on_store_error Stale 5m", `{"policy":"stale","within":300000000000}`},
		{"on_store_error", ""},
		{"on_store_error stale", ""},
		{"on_store_error anonymous 5m", ""},
		{"on_store_error stale 5m 1m", ""},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\n" + c.line + "\n}"))
			if c.want == "" {
				if err == nil {
					t.Fatalf("no error; got %+v", h.OnStoreError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(h.OnStoreError)
			if !jsonEqual(t, string(got), c.want) {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
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
