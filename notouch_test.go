package caddysession

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// countingMatcher is a request matcher that counts how often it runs.
type countingMatcher struct {
	calls int
	match func(r *http.Request) (bool, error)
}

func (m *countingMatcher) MatchWithError(r *http.Request) (bool, error) {
	m.calls++
	return m.match(r)
}

// isPoll matches requests for /poll, as `path /poll` would.
func isPoll(r *http.Request) (bool, error) { return r.URL.Path == "/poll", nil }

// TestNoTouch runs requests of a session through a handler with and
// without no_touch, and counts the store's updates and the matcher's runs:
// the matcher runs once, and only for a request that would touch; a match,
// or X-Session-Touch: false, stores no touch, and writes keep the
// session's deadline.
func TestNoTouch(t *testing.T) {
	type row struct {
		name       string
		configured bool                                // no_touch is the counting matcher
		match      func(r *http.Request) (bool, error) // default isPoll
		path       string                              // default /poll
		anonymous  bool
		seen       time.Duration // how long ago the session was last seen; default two touch intervals
		commands   []string      // the app's response headers, "Name: value"
		rewrite    bool          // a handler inside rewrites the request to /index.php

		updates int  // store updates
		calls   int  // matcher runs
		touched bool // LastSeen moved
		status  int  // the error's status, 0 for none
		key     bool // cart=x was stored
	}
	rows := []row{
		{name: "not configured: a touch due is stored", touched: true, updates: 1},
		{name: "a poll due for a touch stores nothing", configured: true, calls: 1},
		{name: "a page due for a touch is touched", configured: true, path: "/page", calls: 1, updates: 1, touched: true},
		{name: "a poll with no touch due runs no matcher", configured: true, seen: time.Second},
		{name: "a page with no touch due runs no matcher", configured: true, path: "/page", seen: time.Second},
		{name: "a poll that writes keeps the deadline", configured: true, commands: []string{"X-Session-Set-Cart: x"}, calls: 1, updates: 1, key: true},
		{name: "a poll that writes with no touch due", configured: true, seen: time.Second, commands: []string{"X-Session-Set-Cart: x"}, calls: 1, updates: 1, key: true},
		{name: "a poll that logs in keeps the deadline", configured: true, commands: []string{"X-Session-Set-User: bob"}, calls: 1, updates: 1},
		{name: "a poll that renews keeps the deadline", configured: true, commands: []string{"X-Session-Renew: true"}, calls: 1, updates: 1},
		{name: "an anonymous poll that sets a key starts a session", configured: true, anonymous: true, commands: []string{"X-Session-Set-Cart: x"}, updates: 1, key: true},
		{name: "a poll that logs out", configured: true, commands: []string{"X-Session-Destroy: true"}, updates: 1},
		{name: "a page rewritten to /poll inside is a page", configured: true, path: "/page", rewrite: true, calls: 1, updates: 1, touched: true},
		{name: "a poll rewritten inside is a poll", configured: true, rewrite: true, calls: 1},
		{name: "touch false stores no touch", path: "/page", commands: []string{"X-Session-Touch: false"}},
		{name: "touch false runs no matcher", configured: true, path: "/page", commands: []string{"X-Session-Touch: false"}},
		{name: "touch false with a write keeps the deadline", path: "/page", commands: []string{"X-Session-Touch: False", "X-Session-Set-Cart: x"}, updates: 1, key: true},
		{name: "touch true is refused, and the write with it: a request as any other", path: "/page",
			commands: []string{"X-Session-Touch: true", "X-Session-Set-Cart: x"}, updates: 1, touched: true},
		{name: "a failing matcher fails the request and stores nothing", configured: true,
			match: func(*http.Request) (bool, error) { return false, errors.New("no good") }, calls: 1, status: http.StatusInternalServerError},
		{name: "a failing matcher's own status is kept", configured: true,
			match: func(*http.Request) (bool, error) {
				return false, caddyhttp.Error(http.StatusServiceUnavailable, errors.New("store down"))
			}, calls: 1, status: http.StatusServiceUnavailable},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h, counting := testHandler(t)
			m := &countingMatcher{match: tc.match}
			if m.match == nil {
				m.match = isPoll
			}
			if tc.configured {
				h.noTouch = caddyhttp.MatcherSets{{m}}
			}
			if tc.seen == 0 {
				tc.seen = 2 * h.timeouts.TouchInterval
			}
			if tc.path == "" {
				tc.path = "/poll"
			}
			var id string
			var hash *session.Hash
			var before *session.Record
			if !tc.anonymous {
				id, hash = newSessionID()
				before = startSession(t, h, *hash, clock.Now().Add(-tc.seen))
			}
			counting.updates.Store(0)

			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				if tc.rewrite {
					r.URL.Path, r.RequestURI = "/index.php", "/index.php"
					if tc.path == "/page" {
						r.URL.Path, r.RequestURI = "/poll", "/poll"
					}
				}
				for _, c := range tc.commands {
					name, value, _ := strings.Cut(c, ":")
					w.Header().Add(name, strings.TrimSpace(value))
				}
				w.WriteHeader(http.StatusOK)
				return nil
			})
			u, _ := url.Parse("http://app.example.com" + tc.path)
			header := http.Header{}
			if id != "" {
				header.Set("Cookie", "sid="+id)
			}
			w := &discard{h: http.Header{}}
			err := h.ServeHTTP(w, newBenchRequest(u, header), next)

			var he caddyhttp.HandlerError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("ServeHTTP: %v", err)
			case tc.status != 0 && (!errors.As(err, &he) || he.StatusCode != tc.status):
				t.Fatalf("ServeHTTP = %v, want an error with status %d", err, tc.status)
			}
			if got := counting.updates.Load(); got != int64(tc.updates) {
				t.Errorf("%d store updates, want %d", got, tc.updates)
			}
			if m.calls != tc.calls {
				t.Errorf("the matcher ran %d times, want %d", m.calls, tc.calls)
			}
			checkStanding(t, h, w.h, hash, before, tc.touched, tc.key)
		})
	}
}

// testHandler is a provisioned handler on a bolt file of its own, whose
// store counts its updates.
func testHandler(t *testing.T) (*Handler, *countingStore) {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"backend": "bolt", "path": filepath.Join(t.TempDir(), "sessions.db"), "no_sync": true,
	})
	h := &Handler{StoreRaw: cfg}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: h.store}
	h.store = counting
	return h, counting
}

// startSession stores a session of alice under hash, last seen at seen.
func startSession(t *testing.T, h *Handler, hash session.Hash, seen time.Time) *session.Record {
	t.Helper()
	res, err := h.store.Update(t.Context(), store.Update{
		NewHash: &hash, Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
		Identity: h.identity, Realm: h.realm, Now: seen, Timeouts: h.timeouts, Limits: h.limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Record
}

// checkStanding checks the session the response leaves, under the ID of
// its cookie if it set one: last seen when it was before, unless touched,
// and holding cart=x if key.
func checkStanding(t *testing.T, h *Handler, hdr http.Header, hash *session.Hash, before *session.Record, touched, key bool) {
	t.Helper()
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name != "sid" {
			continue
		}
		if c.MaxAge < 0 {
			return // ended
		}
		h := session.HashID(c.Value)
		hash = &h
	}
	if hash == nil {
		return // anonymous, and still
	}
	rec, err := h.store.Load(context.Background(), *hash, clock.Now(), h.timeouts)
	if err != nil {
		t.Fatalf("loading the session: %v", err)
	}
	if _, ok := rec.Values["cart"]; ok != key {
		t.Errorf("the session holds %v; want cart set: %v", rec.Values, key)
	}
	if before == nil {
		return // started by the request
	}
	moved := !rec.LastSeen.Equal(before.LastSeen) || !rec.IdleDeadline.Equal(before.IdleDeadline)
	if moved != touched {
		t.Errorf("last seen %s, idle until %s; was %s, %s; want touched: %v",
			rec.LastSeen, rec.IdleDeadline, before.LastSeen, before.IdleDeadline, touched)
	}
}

// TestNoTouchCaddyfile: no_touch takes the site's named matchers and
// paths, each a matcher set of the JSON list.
func TestNoTouchCaddyfile(t *testing.T) {
	site := func(session string) string {
		return "example.com {\n\t@poll header X-Requested-With XMLHttpRequest\n\t@events {\n\t\tpath /events/*\n\t\tmethod GET\n\t}\n\t" +
			session + "\n\trespond ok\n}\n"
	}
	good := []struct{ name, session, want string }{
		{"one named matcher", "session {\n\t\tno_touch @poll\n\t}",
			`[{"header":{"X-Requested-With":["XMLHttpRequest"]}}]`},
		{"named matchers and a path", "session {\n\t\tno_touch @poll @events /status\n\t}",
			`[{"header":{"X-Requested-With":["XMLHttpRequest"]}},{"method":["GET"],"path":["/events/*"]},{"path":["/status"]}]`},
		{"none", "session", ``},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site(tc.session)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			got := normalize(t, findHandlerField(t, adapted, "no_touch"))
			if want := normalize(t, json.RawMessage(tc.want)); got != want {
				t.Errorf("no_touch:\n got %s\nwant %s", got, want)
			}
		})
	}
	bad := map[string]struct{ session, says string }{
		"no matcher":        {"session {\n\t\tno_touch\n\t}", "wrong argument count"},
		"not a matcher":     {"session {\n\t\tno_touch poll\n\t}", `"poll" is not a matcher`},
		"unknown matcher":   {"session {\n\t\tno_touch @polling\n\t}", "@polling"},
		"every request":     {"session {\n\t\tno_touch *\n\t}", "every request"},
		"given twice":       {"session {\n\t\tno_touch @poll\n\t\tno_touch @events\n\t}", "given twice"},
		"a block is no arg": {"session {\n\t\tno_touch {\n\t\t\tpath /poll\n\t\t}\n\t}", "wrong argument count"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site(tc.session)), nil)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want one saying %q", err, tc.says)
			}
		})
	}
}

// findHandlerField returns a field of the session handler in an adapted
// config, nil if the handler has none.
func findHandlerField(t *testing.T, adapted []byte, field string) json.RawMessage {
	t.Helper()
	var found json.RawMessage
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "session" {
				if f, ok := v[field]; ok {
					found, _ = json.Marshal(f)
				}
				return
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var cfg any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	walk(cfg)
	return found
}

// TestNoTouchSessionMatcherReadsThroughItsHandler: a session matcher in
// no_touch reads through the handler it belongs to, even where the route
// list has other session handlers.
func TestNoTouchSessionMatcherReadsThroughItsHandler(t *testing.T) {
	h := &Handler{cookie: &session.Cookie{Name: "sid"}}
	other := &Handler{cookie: &session.Cookie{Name: "sid"}}
	m := &MatchSession{Key: "poller"}
	h.noTouch = caddyhttp.MatcherSets{{m}}
	w := newWalker()
	w.server(&caddyhttp.Server{Listen: []string{":443"}, Routes: caddyhttp.RouteList{
		{Handlers: []caddyhttp.MiddlewareHandler{other, h}},
	}})
	sc, placed := w.matchers[m]
	if !placed {
		t.Fatal("the walk did not find the session matcher of no_touch")
	}
	got, err := handlerFor(m, sc, []*Handler{other, h})
	if err != nil || got != h {
		t.Fatalf("the matcher reads through %p (%v), want its own handler %p", got, err, h)
	}
}
