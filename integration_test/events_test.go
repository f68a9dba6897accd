package integration_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/caddy-session/caddy-session/session"
)

func init() {
	caddy.RegisterModule(sessionRecorder{})
}

// sessionRecorder is an event handler for the tests: it keeps every event
// it is given in recorded.
type sessionRecorder struct{}

// CaddyModule returns the Caddy module information.
func (sessionRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "events.handlers.session_recorder",
		New: func() caddy.Module { return new(sessionRecorder) },
	}
}

// Handle keeps the event.
func (*sessionRecorder) Handle(_ context.Context, e caddy.Event) error {
	raw, err := json.Marshal(e.Data)
	if err != nil {
		return err
	}
	var origin string
	if e.Origin() != nil {
		origin = string(e.Origin().CaddyModule().ID)
	}
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	recorded.events = append(recorded.events, recordedEvent{name: e.Name(), origin: origin, raw: string(raw)})
	return nil
}

// UnmarshalCaddyfile takes no arguments: `on <event> session_recorder`.
func (*sessionRecorder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

var (
	_ caddyevents.Handler   = (*sessionRecorder)(nil)
	_ caddyfile.Unmarshaler = (*sessionRecorder)(nil)
)

// recordedEvent is an event as the recorder got it, its data in JSON.
type recordedEvent struct {
	name, origin, raw string
}

// data decodes the event's data, numbers as float64.
func (e recordedEvent) data(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.raw), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var recorded struct {
	mu     sync.Mutex
	events []recordedEvent
}

// takeEvents returns the events recorded since the last call.
func takeEvents() []recordedEvent {
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	out := recorded.events
	recorded.events = nil
	return out
}

// sessionEvents subscribes the recorder to every session event. The events
// app matches names exactly: there is no session.* pattern.
const sessionEvents = `events {
		on session.created session_recorder
		on session.renewed session_recorder
		on session.destroyed session_recorder
		on session.remembered session_recorder
	}`

// TestEvents follows a login, a renewal, a logout, a logout everywhere and
// the admin API's revocations through a real Caddy, and checks the session
// events that a subscriber gets: their names, their data, and that no event
// holds a session ID or a value of the session but the identity's.
func TestEvents(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		s.globals = sessionEvents
		s.load()
		takeEvents()

		var stores []apiStore
		sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
		if len(stores) != 1 {
			t.Fatalf("stores %+v, want one", stores)
		}
		common := map[string]any{"store": stores[0].Name, "backend": stores[0].Backend, "realm": "127.0.0.1@" + portOf(s)}

		var ids []string // every ID a visitor held, none of which an event may show
		short := func(v *visitor) string {
			t.Helper()
			ids = append(ids, v.sid)
			return session.HashID(v.sid).Short()
		}
		// expect checks that the requests since the last call emitted
		// exactly these events, each with the common data and its own.
		expect := func(step string, want ...map[string]any) {
			t.Helper()
			got := takeEvents()
			if len(got) != len(want) {
				t.Fatalf("%s: %d events, want %d: %+v", step, len(got), len(want), got)
			}
			for i, e := range got {
				if e.origin != "http.handlers.session" {
					t.Errorf("%s: event %s comes from %q", step, e.name, e.origin)
				}
				data := e.data(t)
				wantData := map[string]any{}
				for k, v := range common {
					wantData[k] = v
				}
				for k, v := range want[i] {
					if k != "name" {
						wantData[k] = v
					}
				}
				if e.name != want[i]["name"] || !jsonEqual(data, wantData) {
					t.Errorf("%s: event %d is %s %s\nwant %s %s", step, i, e.name, e.raw, want[i]["name"], mustJSON(wantData))
				}
				for _, id := range ids {
					if strings.Contains(e.raw, id) {
						t.Errorf("%s: event %s holds a session ID: %s", step, e.name, e.raw)
					}
				}
				for _, secret := range []string{"apple", "pear", "admin-role"} {
					if strings.Contains(e.raw, secret) {
						t.Errorf("%s: event %s holds the session value %q: %s", step, e.name, secret, e.raw)
					}
				}
				if h, ok := data["session"].(string); ok && !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(h) {
					t.Errorf("%s: event %s names the session %q, not by its short hash", step, e.name, h)
				}
			}
		}

		// An anonymous visitor fills a cart, then logs in: the session
		// starts without identity, and the login renews it.
		a := s.visitor()
		expectStatus(t, a.get("/cart", "X-Session-Set-Cart: apple"), http.StatusOK)
		first := short(a)
		expect("a cart", map[string]any{"name": "session.created", "session": first})
		expectStatus(t, a.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Role: admin-role"), http.StatusOK)
		login := short(a)
		expect("a login on a session with a cart", map[string]any{"name": "session.renewed",
			"session": login, "previous": first, "identity": "alice", "identity_changed": true})

		// Reads and changes that keep the ID tell nothing.
		a.get("/page")
		a.get("/cart", "X-Session-Set-Cart: pear")
		expect("reads and a change")

		// A renewal keeps the identity.
		expectStatus(t, a.get("/renew", "X-Session-Renew: true"), http.StatusOK)
		renewed := short(a)
		expect("a renewal", map[string]any{"name": "session.renewed",
			"session": renewed, "previous": login, "identity": "alice", "identity_changed": false})

		// A login on a new device starts a session with the identity.
		b := s.visitor()
		b.get("/login", "X-Session-Set-User: alice")
		onB := short(b)
		expect("a login", map[string]any{"name": "session.created", "session": onB, "identity": "alice"})

		// A logout.
		expectStatus(t, b.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		expect("a logout", map[string]any{"name": "session.destroyed",
			"session": onB, "identity": "alice", "cause": "logout", "sessions": 1.0})

		// A logout with keys set beside it ends one session and starts
		// another.
		c := s.visitor()
		c.get("/login", "X-Session-Set-User: carol")
		onC := short(c)
		takeEvents()
		c.get("/logout", "X-Session-Destroy: true", "X-Session-Set-Cart: apple")
		fresh := short(c)
		expect("a logout that keeps a cart",
			map[string]any{"name": "session.destroyed", "session": onC, "identity": "carol", "cause": "logout", "sessions": 1.0},
			map[string]any{"name": "session.created", "session": fresh})

		// A logout everywhere, from a second device of alice's.
		d := s.visitor()
		d.get("/login", "X-Session-Set-User: alice")
		onD := short(d)
		takeEvents()
		expectStatus(t, d.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
		expect("a logout everywhere", map[string]any{"name": "session.destroyed",
			"session": onD, "identity": "alice", "cause": "logout_all", "sessions": 2.0})
		expectUser(t, a, "")
		expect("reads after the logout everywhere")

		// The admin API's revocation of one session.
		e := s.visitor()
		e.get("/login", "X-Session-Set-User: erin", "X-Session-Set-Cart: apple")
		onE := short(e)
		takeEvents()
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+e.adminHash(), "").decode(t, http.StatusOK, new(map[string]any))
		expect("an admin revocation", map[string]any{"name": "session.destroyed",
			"session": onE, "identity": "erin", "cause": "admin", "sessions": 1.0})

		// Of one session by the hash it had before a renewal: the
		// session it became ends, and the event names its user, not
		// the forward record's none, and the session as the renewal's
		// event told of it, under its new hash.
		g := s.visitor()
		g.get("/login", "X-Session-Set-User: gina")
		listed := g.adminHash()
		short(g)
		g.get("/", "X-Session-Renew: true")
		renewedG := short(g)
		takeEvents()
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+listed, "").decode(t, http.StatusOK, new(map[string]any))
		expect("an admin revocation by the hash before a renewal", map[string]any{"name": "session.destroyed",
			"session": renewedG, "identity": "gina", "cause": "admin", "sessions": 1.0})

		// And of every session of a user: one event, naming no session.
		for range 2 {
			f := s.visitor()
			f.get("/login", "X-Session-Set-User: frank")
			short(f)
		}
		takeEvents()
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "frank"}`).decode(t, http.StatusOK, new(map[string]any))
		expect("an admin revocation by user", map[string]any{"name": "session.destroyed",
			"identity": "frank", "cause": "admin", "sessions": 2.0})
	})
}

// portOf is the site's port, as its default realm names it.
func portOf(s *site) string {
	_, port, _ := strings.Cut(strings.TrimPrefix(s.url(""), "http://"), ":")
	return ":" + port
}

func jsonEqual(a, b map[string]any) bool {
	return mustJSON(a) == mustJSON(b)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
