package caddysession

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// TestAdoptMakesTheAdoptersChecks: a handler that adopts the session
// another handler loaded for the request (the outer one took the cookie
// off, so it cannot load it again) answers a failed read with its own
// on_store_error and serves the session only if its own timeouts and
// binding let it (integration_test/nested_bind_test.go runs the same
// through Caddy).
func TestAdoptMakesTheAdoptersChecks(t *testing.T) {
	now := clock.Now()
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	seenAgo := func(d time.Duration) *session.Record {
		return &session.Record{Created: now.Add(-d), LastSeen: now.Add(-d),
			IdleDeadline: now.Add(timeouts.Idle - d), AbsoluteDeadline: now.Add(timeouts.Absolute - d),
			Values: map[string]string{"user": "alice"}}
	}
	shorter := timeouts
	shorter.Idle = 10 * time.Minute
	tests := []struct {
		name            string
		loader, adopter storeErrorPolicy
		adopterTimeouts session.Timeouts
		degraded        bool
		record          *session.Record
		wantErr         bool
		wantServed      bool
	}{
		{name: "same rules", record: seenAgo(time.Minute), wantServed: true},
		{name: "its shorter idle timeout has passed", adopterTimeouts: shorter, record: seenAgo(11 * time.Minute)},
		{name: "its shorter idle timeout has not passed", adopterTimeouts: shorter, record: seenAgo(9 * time.Minute), wantServed: true},
		{name: "a copy served, the adopter says 503", loader: policyStale, adopter: policyUnavailable, degraded: true, record: seenAgo(time.Minute), wantErr: true},
		{name: "a copy served, the adopter says anonymous", loader: policyStale, adopter: policyAnonymous, degraded: true, record: seenAgo(time.Minute)},
		{name: "served as anonymous, the adopter says 503", loader: policyAnonymous, adopter: policyUnavailable, degraded: true, wantErr: true},
		{name: "a copy served, the adopter serves copies too", loader: policyStale, adopter: policyStale, degraded: true, record: seenAgo(time.Minute), wantServed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loader := &Handler{storeErrors: tc.loader, timeouts: timeouts, logger: zap.NewNop()}
			adopter := &Handler{storeErrors: tc.adopter, timeouts: timeouts, logger: zap.NewNop()}
			if tc.adopterTimeouts != (session.Timeouts{}) {
				adopter.timeouts = tc.adopterTimeouts
			}
			s := &requestState{handler: loader, now: now, record: tc.record, degraded: tc.degraded}
			if tc.record != nil {
				s.hash = session.HashID(session.NewID())
			}
			if tc.adopter == policyStale {
				// Its copy holds the session, read just now.
				adopter.OnStoreError = &StoreErrorConfig{Policy: "stale", Within: caddy.Duration(5 * time.Minute)}
				adopter.stale = &staleCopy{cur: newGeneration(), old: newGeneration(), within: 5 * time.Minute}
				adopter.stale.keep(s.hash, tc.record, "user", now, adopter.stale.reading())
			}
			got, err := adopter.adopt(s)
			if (err != nil) != tc.wantErr {
				t.Fatalf("adopt: error %v, want one: %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if served := got.record != nil; served != tc.wantServed {
				t.Errorf("the adopter serves the session: %v, want %v", served, tc.wantServed)
			}
			if got.handler != adopter || got.degraded != tc.degraded {
				t.Errorf("the adopted state is %+v", got)
			}
			if s.record != tc.record || s.handler != loader {
				t.Error("adopting changed the loader's state")
			}
		})
	}
}
