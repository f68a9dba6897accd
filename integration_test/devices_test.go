package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// A user's own devices: max_sessions_per_identity, X-Session-Meta-Devices
// and X-Session-Revoke, through a real Caddy on bolt and Redis.

// deviceEntry is one session of X-Session-Meta-Devices.
type deviceEntry struct {
	Session   string `json:"session"`
	Created   string `json:"created"`
	LastSeen  string `json:"last_seen"`
	Current   *bool  `json:"current"`
	UserAgent string `json:"user_agent"`
}

// devices is the list the upstream got, nil if it got none.
func (r *response) devices(t *testing.T) []deviceEntry {
	t.Helper()
	values := r.seen.Headers["X-Session-Meta-Devices"]
	if len(values) == 0 {
		return nil
	}
	if len(values) != 1 {
		t.Fatalf("the upstream got %d X-Session-Meta-Devices headers: %q", len(values), values)
	}
	for i := 0; i < len(values[0]); i++ {
		if c := values[0][i]; c < 0x20 || c > 0x7e {
			t.Fatalf("X-Session-Meta-Devices holds byte %#x: %q", c, values[0])
		}
	}
	list := []deviceEntry{}
	if err := json.Unmarshal([]byte(values[0]), &list); err != nil {
		t.Fatalf("X-Session-Meta-Devices is not a JSON list: %v: %s", err, values[0])
	}
	for _, d := range list {
		for _, ts := range []string{d.Created, d.LastSeen} {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Fatalf("X-Session-Meta-Devices: %v", err)
			}
		}
		if d.Current == nil {
			t.Fatalf("X-Session-Meta-Devices: an entry without current: %s", values[0])
		}
	}
	return list
}

// shortHash is the short hash of the visitor's session, as the device
// list and X-Session-Revoke name it.
func (v *visitor) shortHash() string {
	v.site.t.Helper()
	if v.sid == "" {
		v.site.t.Fatal("the visitor has no session")
	}
	return session.HashID(v.sid).Short()
}

// login logs the visitor in as user, from a browser that says ua.
func (v *visitor) login(user, ua string) {
	v.site.t.Helper()
	r := v.do(http.MethodGet, "/login", "User-Agent", ua, "Test-Header", "X-Session-Set-User: "+user)
	expectStatus(v.site.t, r, http.StatusOK)
	if v.sid == "" {
		v.site.t.Fatal("the login issued no session")
	}
}

// destroyedTotal is caddy_session_destroyed_total for a cause, summed
// over both stores.
func destroyedTotal(t *testing.T, cause string) float64 {
	t.Helper()
	m := scrapeMetrics(t)
	var sum float64
	for _, backend := range []string{"bolt", "redis"} {
		sum += m[fmt.Sprintf(`caddy_session_destroyed_total{cause=%q,store=%q}`, cause, backend)]
	}
	return sum
}

// rejected is the count of refused responses for a reason.
func rejected(t *testing.T, reason string) float64 {
	t.Helper()
	return scrapeMetrics(t)[fmt.Sprintf(`caddy_session_commands_rejected_total{reason=%q}`, reason)]
}

// destroyedEvents returns the session.destroyed events recorded since the
// last takeEvents, as their data.
func destroyedEvents(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range takeEvents() {
		if e.name == "session.destroyed" {
			out = append(out, e.data(t))
		}
	}
	return out
}

// TestMaxSessionsPerIdentity: with a cap of 2, a third login of a user
// ends the user's least recently seen session, whose cookie opens nothing
// from then on; a login by rotation counts as one, a renewal does not, and
// other users are left alone.
func TestMaxSessionsPerIdentity(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "max_sessions_per_identity 2\n\t\tidle_timeout 1h")
		s.globals = sessionEvents
		s.load()
		takeEvents()
		evicted := destroyedTotal(t, "evicted")

		a, b, c, bob := s.visitor(), s.visitor(), s.visitor(), s.visitor()
		a.login("alice", "A")
		clock.Advance(2 * time.Minute)
		b.login("alice", "B")
		bob.login("bob", "Bob")
		clock.Advance(2 * time.Minute)
		expectUser(t, a, "alice") // a is seen after b now
		clock.Advance(2 * time.Minute)
		takeEvents()
		c.login("alice", "C")

		events := destroyedEvents(t)
		if len(events) != 1 || events[0]["cause"] != "evicted" || events[0]["session"] != session.HashID(b.sid).Short() ||
			events[0]["identity"] != "alice" || events[0]["sessions"] != 1.0 {
			t.Fatalf("session.destroyed events %v, want one of b's eviction", events)
		}
		expectUser(t, b, "")
		expectUser(t, a, "alice")
		expectUser(t, c, "alice")
		expectUser(t, bob, "bob")
		if got := destroyedTotal(t, "evicted"); got != evicted+1 {
			t.Fatalf("destroyed_total{cause=evicted} went from %v to %v, want one more", evicted, got)
		}

		// c is seen after a now. A visitor with a cart logs in (a
		// rotation, which is a login too), and a goes.
		clock.Advance(2 * time.Minute)
		expectUser(t, c, "alice")
		clock.Advance(2 * time.Minute)
		d := s.visitor()
		expectStatus(t, d.get("/cart", "X-Session-Set-Cart: apple"), http.StatusOK)
		anonymous := d.sid
		d.login("alice", "D")
		if d.sid == anonymous {
			t.Fatal("the login did not rotate the ID")
		}
		expectUser(t, a, "")
		expectUser(t, c, "alice")
		expectUser(t, d, "alice")

		// A renewal, or a write, is no login: nothing is evicted.
		clock.Advance(2 * time.Minute)
		expectStatus(t, c.get("/renew", "X-Session-Renew: true"), http.StatusOK)
		expectStatus(t, d.get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
		expectUser(t, c, "alice")
		expectUser(t, d, "alice")
		expectUser(t, bob, "bob")
		if got := destroyedTotal(t, "evicted"); got != evicted+2 {
			t.Fatalf("destroyed_total{cause=evicted} went from %v to %v, want two more", evicted, got)
		}
	})
}

// TestDevices: on the devices page, the app gets the user's sessions, its
// own first and marked current, with the User-Agents recorded at their
// creation; elsewhere it gets no list, and a client's forged one never
// reaches it.
func TestDevices(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "record_user_agent\n\t\tdevices /account/devices")
		firefox := "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 \xc3\xbcber"
		a, b, bob := s.visitor(), s.visitor(), s.visitor()
		a.login("alice", firefox)
		clock.Advance(2 * time.Minute)
		b.login("alice", "curl/8.5.0")
		bob.login("bob", "Bob's browser")
		clock.Advance(2 * time.Minute)

		forged := `[{"session":"0123456789abcdef","current":true}]`
		r := a.do(http.MethodGet, "/account/devices", "X-Session-Meta-Devices", forged, "X-Session-Meta-Remembered", "true")
		list := r.devices(t)
		if len(list) != 2 {
			t.Fatalf("the devices page got %+v, want alice's two sessions", list)
		}
		if list[0].Session != a.shortHash() || !*list[0].Current || list[0].UserAgent != firefox {
			t.Fatalf("first %+v, want a's session, current, with its User-Agent", list[0])
		}
		if list[1].Session != b.shortHash() || *list[1].Current || list[1].UserAgent != "curl/8.5.0" {
			t.Fatalf("second %+v, want b's session, not current, with its User-Agent", list[1])
		}
		if raw := r.seen.Headers["X-Session-Meta-Devices"][0]; !strings.Contains(raw, `\u00fcber`) {
			t.Fatalf("the list does not escape the User-Agent's ü: %s", raw)
		}
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Meta-Devices": r.seen.Headers.Get("X-Session-Meta-Devices")})

		// From b, b is current; a listed after it, as the most recently
		// seen other.
		list = b.get("/account/devices").devices(t)
		if len(list) != 2 || list[0].Session != b.shortHash() || !*list[0].Current || list[1].Session != a.shortHash() || *list[1].Current {
			t.Fatalf("from b: %+v", list)
		}
		// bob sees his own only.
		if list = bob.get("/account/devices").devices(t); len(list) != 1 || list[0].Session != bob.shortHash() || list[0].UserAgent != "Bob's browser" {
			t.Fatalf("bob's devices: %+v", list)
		}

		// Other pages get no list, and neither the forged one in any
		// spelling.
		for _, v := range []*visitor{a, s.visitor()} {
			r = v.do(http.MethodGet, "/page", "X-Session-Meta-Devices", forged, "X-Session-Meta-Remembered", "true")
			if list := r.devices(t); list != nil {
				t.Fatalf("a page outside devices got %+v", list)
			}
		}
		expectSession(t, a.do(http.MethodGet, "/page", "X-Session-Meta-Devices", forged), map[string]string{"X-Session-User": "alice"})
		// An anonymous visitor, and a session with no user, get none on
		// the devices page either.
		anonymous := s.visitor()
		expectSession(t, anonymous.do(http.MethodGet, "/account/devices", "X-Session-Meta-Devices", forged), map[string]string{})
		cart := s.visitor()
		expectStatus(t, cart.get("/cart", "X-Session-Set-Cart: apple"), http.StatusOK)
		expectSession(t, cart.do(http.MethodGet, "/account/devices", "X-Session-Meta-Devices", forged), map[string]string{"X-Session-Cart": "apple"})

		// Without record_user_agent, a new session has none; the others
		// keep theirs.
		s.options = "devices /account/devices"
		s.load()
		e := s.visitor()
		e.login("alice", "Edge")
		list = e.get("/account/devices").devices(t)
		if len(list) != 3 || list[0].Session != e.shortHash() || list[0].UserAgent != "" || list[1].UserAgent != "curl/8.5.0" {
			t.Fatalf("after record_user_agent was turned off: %+v", list)
		}
		if raw := e.get("/account/devices").seen.Headers.Get("X-Session-Meta-Devices"); strings.Count(raw, "user_agent") != 2 {
			t.Fatalf("a session with no User-Agent has the field: %s", raw)
		}
	})
}

// TestRevoke: X-Session-Revoke ends a session the device list showed; a
// short hash of another user's session, of another realm's, of the
// current one or of none is refused, with the rest of its response, and
// nothing changes.
func TestRevoke(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "devices /account/devices")
		s.globals = sessionEvents
		s.load()
		a, b, bob := s.visitor(), s.visitor(), s.visitor()
		a.login("alice", "A")
		b.login("alice", "B")
		bob.login("bob", "Bob")
		takeEvents()
		revoked := destroyedTotal(t, "revoked")
		bShort := b.shortHash()

		list := a.get("/account/devices").devices(t)
		if len(list) != 2 || list[1].Session != b.shortHash() {
			t.Fatalf("a's devices: %+v", list)
		}
		r := a.do(http.MethodPost, "/account/devices", "Test-Header", "X-Session-Revoke: "+list[1].Session)
		expectStatus(t, r, http.StatusOK)
		if list := r.devices(t); len(list) != 2 {
			t.Fatalf("the request that revoked saw %+v, the list before its response", list)
		}
		events := destroyedEvents(t)
		if len(events) != 1 || events[0]["cause"] != "revoked" || events[0]["session"] != b.shortHash() || events[0]["identity"] != "alice" {
			t.Fatalf("session.destroyed events %v, want b's revocation", events)
		}
		expectUser(t, b, "")
		expectUser(t, a, "alice")
		if list := a.get("/account/devices").devices(t); len(list) != 1 || list[0].Session != a.shortHash() {
			t.Fatalf("a's devices after the revocation: %+v", list)
		}
		if got := destroyedTotal(t, "revoked"); got != revoked+1 {
			t.Fatalf("destroyed_total{cause=revoked} went from %v to %v, want one more", revoked, got)
		}

		// A session of alice in another realm: the same store, another
		// realm of the same site's config.
		s.options = "devices /account/devices\n\t\trealm elsewhere"
		s.load()
		other := s.visitor()
		other.login("alice", "Elsewhere")
		s.options = "devices /account/devices"
		s.load()
		expectUser(t, a, "alice")
		takeEvents()

		refusals := []struct {
			name, short, reason string
			v                   *visitor
		}{
			{"another user's session", bob.shortHash(), "unknown_session", a},
			{"another realm's session of the user", other.shortHash(), "unknown_session", a},
			{"a revoked session", bShort, "unknown_session", a},
			{"no session at all", "0123456789abcdef", "unknown_session", a},
			{"the current session", a.shortHash(), "conflict", a},
			{"from bob, alice's session", a.shortHash(), "unknown_session", bob},
			{"from an anonymous request", a.shortHash(), "unknown_session", s.visitor()},
		}
		for _, tc := range refusals {
			before := rejected(t, tc.reason)
			r := tc.v.get("/account/devices", "X-Session-Revoke: "+tc.short, "X-Session-Set-Cart: apple")
			expectStatus(t, r, http.StatusOK) // still delivered
			if got := rejected(t, tc.reason); got != before+1 {
				t.Errorf("%s: commands_rejected_total{reason=%q} went from %v to %v, want one more", tc.name, tc.reason, before, got)
			}
			if events := takeEvents(); len(events) != 0 {
				t.Errorf("%s: events %+v", tc.name, events)
			}
		}
		// Nothing changed: every session is there, and no cart was set
		// beside a refused revocation.
		expectSession(t, a.get("/page"), map[string]string{"X-Session-User": "alice"})
		expectSession(t, bob.get("/page"), map[string]string{"X-Session-User": "bob"})
		s.options = "devices /account/devices\n\t\trealm elsewhere"
		s.load()
		expectSession(t, other.get("/page"), map[string]string{"X-Session-User": "alice"})
	})
}

// TestDevicesRecipe runs the README's devices recipe as written, with only
// its site address, store and upstream replaced.
func TestDevicesRecipe(t *testing.T) {
	up := startUpstream(t)
	s := recipeSite(t, "<!-- recipe: devices -->", up)

	visitors := make([]*visitor, 6)
	for i := range visitors {
		visitors[i] = s.visitor()
		visitors[i].login("alice", fmt.Sprint("browser ", i))
		clock.Advance(2 * time.Minute)
	}
	expectUser(t, visitors[0], "") // the cap of 5 ended the first
	last := visitors[len(visitors)-1]
	list := last.get("/account/devices").devices(t)
	if len(list) != 5 || list[0].Session != last.shortHash() || list[0].UserAgent != "browser 5" {
		t.Fatalf("the devices page got %+v", list)
	}
	expectStatus(t, last.get("/account/devices", "X-Session-Revoke: "+list[4].Session), http.StatusOK)
	if list := last.get("/account/devices").devices(t); len(list) != 4 {
		t.Fatalf("after a revocation: %+v", list)
	}
}
