package caddysession

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-session/caddy-session/session"
)

// TestWarnSharedCookies: two handlers whose cookies a browser keeps as one
// (one name and domain, on hosts it does not tell apart) overwrite each
// other's cookie, and one nested in the other never reads its sessions:
// the outer one takes the cookie off the request. Caddy warns at load when
// they would read different sessions: another realm, or one realm in
// another store (or fallback_store); not when they share their load.
func TestWarnSharedCookies(t *testing.T) {
	handler := func(realm, store, fallback string) *Handler {
		return &Handler{realm: realm, storeName: store, fallbackName: fallback, cookie: &session.Cookie{Name: "sid"}}
	}
	tests := []struct {
		name string
		a, b *Handler
		warn bool
	}{
		{name: "one realm and store: a nested handler adopts the load", a: handler("r", "bolt:a", ""), b: handler("r", "bolt:a", "")},
		{name: "another realm", a: handler("r", "bolt:a", ""), b: handler("s", "bolt:a", ""), warn: true},
		{name: "one realm, another store", a: handler("r", "bolt:a", ""), b: handler("r", "bolt:b", ""), warn: true},
		{name: "one realm and store, another fallback", a: handler("r", "bolt:a", "bolt:old"), b: handler("r", "bolt:a", ""), warn: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			a := &App{logger: zap.New(core)}
			a.warnSharedCookies([]*Handler{tc.a, tc.b}, map[*Handler]site{})
			if got := logs.Len() > 0; got != tc.warn {
				t.Errorf("warned: %v, want %v (%v)", got, tc.warn, logs.All())
			}
		})
	}
}

// TestWarnSplitIdentity: handlers of one realm and store find a user's
// sessions through one index, by the identity key each of them writes it
// under: with different identity keys, the logout everywhere, the cap,
// devices and the revocations of one miss the sessions the other last
// wrote. Caddy warns at load; not when they use one key, nor across
// realms or stores, which keep their sessions apart.
func TestWarnSplitIdentity(t *testing.T) {
	handler := func(realm, store, identity string) *Handler {
		return &Handler{realm: realm, storeName: store, identity: identity, cookie: &session.Cookie{Name: "sid"}}
	}
	tests := []struct {
		name string
		a, b *Handler
		warn bool
	}{
		{name: "one identity key", a: handler("r", "bolt:a", "user"), b: handler("r", "bolt:a", "user")},
		{name: "another identity key", a: handler("r", "bolt:a", "user"), b: handler("r", "bolt:a", "role"), warn: true},
		{name: "another realm", a: handler("r", "bolt:a", "user"), b: handler("s", "bolt:a", "role")},
		{name: "another store", a: handler("r", "bolt:a", "user"), b: handler("r", "bolt:b", "role")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			a := &App{logger: zap.New(core)}
			a.warnSplitIdentity([]*Handler{tc.a, tc.b})
			if got := logs.Len() > 0; got != tc.warn {
				t.Errorf("warned: %v, want %v (%v)", got, tc.warn, logs.All())
			}
		})
	}
}
