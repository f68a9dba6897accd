package caddysession

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

func init() {
	caddy.RegisterModule(new(eventLog))
}

// eventLog is an event handler that keeps what it is given. Its module is
// the one instance, testEvents.
type eventLog struct {
	mu     sync.Mutex
	events []caddy.Event
}

var testEvents = new(eventLog)

func (*eventLog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "events.handlers.session_unit_log",
		New: func() caddy.Module { return testEvents },
	}
}

func (l *eventLog) Handle(_ context.Context, e caddy.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) take() []caddy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// withEvents gives h the events app of a config that subscribes
// testEvents to names, and no other app. A real config, loaded and run:
// the events app of a handler provisioned without one would log at debug
// level (Caddy's logger for tests), and an events app that logs at debug
// level observes every event.
func withEvents(t *testing.T, h *Handler, names ...string) *eventLog {
	t.Helper()
	events := map[string]any{}
	if len(names) > 0 {
		events["subscriptions"] = []any{map[string]any{
			"events":   names,
			"handlers": []any{map[string]any{"handler": "session_unit_log"}},
		}}
	}
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "INFO"}}},
		"apps":    map[string]any{"events": events},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	ctx := caddy.ActiveContext()
	app, err := ctx.App("events")
	if err != nil {
		t.Fatal(err)
	}
	h.events, h.ctx = app.(*caddyevents.App), ctx
	testEvents.take()
	return testEvents
}

var allEvents = []string{eventCreated, eventRenewed, eventDestroyed, eventRemembered}

// TestEmitBuildsNothingUnobserved checks that an event nothing subscribes
// to costs no allocation: its data is never built.
func TestEmitBuildsNothingUnobserved(t *testing.T) {
	h, id := benchHandler(t)
	rec := &session.Record{Values: map[string]string{"user": "alice", "cart": "apple"}}
	ev := sessionEvent{hash: session.HashID(id), realm: "r", record: rec, previous: session.HashID(id), before: rec, cause: causeLogout, sessions: 1}
	rows := []struct {
		name      string
		subscribe []string
		observed  bool
	}{
		{"no events app", nil, false},
		{"no subscriber", []string{}, false},
		{"subscribers of other events", []string{"tls_get_certificate", "session.other"}, false},
		{"subscribers of session events", allEvents, true},
		{"a subscriber of every event", []string{""}, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var log *eventLog
			if row.subscribe != nil {
				log = withEvents(t, h, row.subscribe...)
			} else {
				h.events = nil
			}
			for _, name := range allEvents {
				allocs := testing.AllocsPerRun(20, func() { h.emit(name, ev) })
				if !row.observed && allocs != 0 {
					t.Errorf("%s: %.0f allocations for an event nothing observes, want none", name, allocs)
				}
				if row.observed && allocs == 0 {
					t.Errorf("%s: no allocation for an observed event: the measure is blind", name)
				}
			}
			if log != nil && row.observed != (len(log.take()) > 0) {
				t.Errorf("subscribers got events: %v, want %v", !row.observed, row.observed)
			}
		})
	}
}

// TestEventData checks what each event carries: the short hash and never
// the ID, the identity value and no other value of the session.
func TestEventData(t *testing.T) {
	h, id := benchHandler(t)
	log := withEvents(t, h, allEvents...)
	hash, prev := session.HashID(id), session.HashID(session.NewID())
	alice := &session.Record{Values: map[string]string{"user": "alice", "cart": "apple"}}
	anon := &session.Record{Values: map[string]string{"cart": "apple"}}
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"store": h.storeName, "backend": "bolt", "realm": "r"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	rows := []struct {
		name string
		ev   sessionEvent
		want map[string]any
	}{
		{eventCreated, sessionEvent{hash: hash, realm: "r", record: alice},
			base(map[string]any{"session": hash.Short(), "identity": "alice"})},
		{eventCreated, sessionEvent{hash: hash, realm: "r", record: anon},
			base(map[string]any{"session": hash.Short()})},
		{eventRenewed, sessionEvent{hash: hash, realm: "r", record: alice, previous: prev, before: anon},
			base(map[string]any{"session": hash.Short(), "identity": "alice", "previous": prev.Short(), "identity_changed": true})},
		{eventRenewed, sessionEvent{hash: hash, realm: "r", record: alice, previous: prev, before: alice},
			base(map[string]any{"session": hash.Short(), "identity": "alice", "previous": prev.Short(), "identity_changed": false})},
		{eventRenewed, sessionEvent{hash: hash, realm: "r", record: anon, previous: prev, before: alice},
			base(map[string]any{"session": hash.Short(), "previous": prev.Short(), "identity_changed": true})},
		{eventDestroyed, sessionEvent{hash: hash, realm: "r", record: alice, cause: causeLogout, sessions: 1},
			base(map[string]any{"session": hash.Short(), "identity": "alice", "cause": "logout", "sessions": 1})},
		{eventDestroyed, sessionEvent{realm: "r", identity: "bob", hasIdentity: true, cause: causeAdmin, sessions: 3},
			base(map[string]any{"identity": "bob", "cause": "admin", "sessions": 3})},
		{eventRemembered, sessionEvent{hash: hash, realm: "r", record: alice, remembered: true},
			base(map[string]any{"session": hash.Short(), "identity": "alice", "remembered": true})},
	}
	for _, row := range rows {
		h.emit(row.name, row.ev)
		got := log.take()
		if len(got) != 1 || got[0].Name() != row.name {
			t.Fatalf("%s: got %v", row.name, got)
		}
		if data := got[0].Data; !jsonEqual(t, mustJSON(t, data), mustJSON(t, row.want)) {
			t.Errorf("%s: data %v, want %v", row.name, data, row.want)
		}
	}
}

// TestReadPathEmitsNothing serves a read and a login through the handler
// with every session event subscribed: the read emits nothing, the login
// one event.
func TestReadPathEmitsNothing(t *testing.T) {
	h, id := benchHandler(t)
	log := withEvents(t, h, allEvents...)
	u, _ := url.Parse("http://app.example.com/page")
	w := &discard{h: http.Header{}}
	if err := h.ServeHTTP(w, newBenchRequest(u, browserHeader(id)), app); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 0 {
		t.Fatalf("a read emitted %d events", len(got))
	}
	login := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Session-Set-User", "bob")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	clear(w.h)
	if err := h.ServeHTTP(w, newBenchRequest(u, browserHeader("")), login); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 1 || got[0].Name() != eventCreated || got[0].Data["identity"] != "bob" {
		t.Fatalf("a login emitted %v", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
