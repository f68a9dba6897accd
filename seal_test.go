package caddysession

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-session/caddy-session/session"
)

func TestUnmarshalSealValues(t *testing.T) {
	for _, c := range []struct{ name, input, want string }{
		{"alone", "session {\n seal_values \n}", `{"seal_values":{}}`},
		{"index key", "session {\n seal_values {\n index_key {env.SESSION_INDEX_KEY} \n}\n}", `{"seal_values":{"index_key":"{env.SESSION_INDEX_KEY}"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input)); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, string(got), c.want) {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	for name, input := range map[string]string{
		"argument":          "session {\n seal_values on \n}",
		"unknown setting":   "session {\n seal_values {\n cipher aes \n}\n}",
		"index key missing": "session {\n seal_values {\n index_key \n}\n}",
		"two index keys":    "session {\n seal_values {\n index_key a b \n}\n}",
		"given twice":       "session {\n seal_values \n seal_values \n}",
	} {
		t.Run(name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
				t.Fatalf("no error for %q", input)
			}
		})
	}
}

// TestSealIndexSecret: where the secret of the identity index comes from,
// per store, and what is refused.
func TestSealIndexSecret(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	noStorage := func() certmagic.Storage { t.Fatal("the storage was used"); return nil }
	ctx := context.Background()

	t.Setenv("SEAL_TEST_INDEX_KEY", "a-secret-from-the-environment-of-32-bytes")
	got, err := (&SealConfig{IndexKey: "{env.SEAL_TEST_INDEX_KEY}"}).secret(ctx, "redis", noStorage)
	if err != nil || string(got) != "a-secret-from-the-environment-of-32-bytes" {
		t.Fatalf("configured secret: %q, %v", got, err)
	}

	// Redis without one: refused, saying what to set.
	_, err = (&SealConfig{}).secret(ctx, "redis", noStorage)
	if err == nil || !strings.Contains(err.Error(), "index_key") {
		t.Fatalf("redis without index_key: %v, want an error naming index_key", err)
	}

	// Bolt without one: made once, kept in Caddy's storage, the same at
	// the next load.
	first, err := (&SealConfig{}).secret(ctx, "bolt", func() certmagic.Storage { return storage })
	if err != nil || len(first) < 32 {
		t.Fatalf("generated secret: %q, %v", first, err)
	}
	again, err := (&SealConfig{}).secret(ctx, "bolt", func() certmagic.Storage { return storage })
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("the generated secret changed between loads: %q, %q, %v", first, again, err)
	}
	kept, err := storage.Load(ctx, indexKeyStorageKey)
	if err != nil || !bytes.Equal(kept, first) {
		t.Fatalf("Caddy's storage holds %q, %v", kept, err)
	}
}

// A short index secret is refused when the config loads.
func TestSealIndexSecretTooShort(t *testing.T) {
	h := &Handler{SealValues: &SealConfig{IndexKey: "short"}, backend: "redis"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.provisionSeal(ctx)
	if err == nil || !strings.Contains(err.Error(), "index_key") || !strings.Contains(err.Error(), "32") {
		t.Fatalf("provisionSeal = %v, want an error naming index_key and its length", err)
	}
}

// TestDerivedFor: a session loaded through another handler serves this
// one only if it derived what this one needs from the ID, which is not
// kept: the key of sealed values for a handler that seals.
func TestDerivedFor(t *testing.T) {
	index, _ := session.NewIndexKey([]byte("an index secret of thirty-two bytes or more"))
	sealing, plain := &Handler{sealIndex: index}, &Handler{}
	rec := &session.Record{Values: map[string]string{}}
	key := session.DeriveSealKey(session.NewID())
	for _, c := range []struct {
		name  string
		state *requestState
		h     *Handler
		want  bool
	}{
		{"no session", &requestState{}, sealing, true},
		{"no key, for a handler that does not seal", &requestState{record: rec}, plain, true},
		{"no key, for a handler that seals", &requestState{record: rec}, sealing, false},
		{"a key, for a handler that seals", &requestState{record: rec, fromID: &fromID{sealKey: key}}, sealing, true},
		{"a CSRF token only, for a handler that seals", &requestState{record: rec, fromID: &fromID{csrfToken: "t"}}, sealing, false},
	} {
		if got := c.state.derivedFor(c.h); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
