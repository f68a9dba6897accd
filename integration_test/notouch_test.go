package integration_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// The site of the no_touch tests: polls are XMLHttpRequests, or requests
// for /events, which a rewrite inside the session sends to the app as /app
// (no_touch still sees /events). Sessions idle out after 10 minutes.
const (
	pollDefs = "@poll header X-Requested-With XMLHttpRequest\n\trewrite /events /app"
	pollOpts = "idle_timeout 10m\n\t\ttouch_interval 1m\n\t\tno_touch @poll /events"
)

// poll is a background request of the page, as fetch() or jQuery sends it.
func (v *visitor) poll(path string, commands ...string) *response {
	v.site.t.Helper()
	h := []string{"X-Requested-With", "XMLHttpRequest"}
	for _, c := range commands {
		h = append(h, "Test-Header", c)
	}
	return v.do(http.MethodGet, path, h...)
}

// TestNoTouchPolledSessionExpires: a session that is only polled ends at
// its idle deadline, though each poll reads it; one that is browsed lives
// on.
func TestNoTouchPolledSessionExpires(t *testing.T) {
	onEachStoreWith(t, pollDefs, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, pollOpts)
		polled, browsed := s.visitor(), s.visitor()
		polled.get("/login", "X-Session-Set-User: alice")
		browsed.get("/login", "X-Session-Set-User: bob")
		alice, bob := map[string]string{"X-Session-User": "alice"}, map[string]string{"X-Session-User": "bob"}

		clock.Advance(4 * time.Minute)
		expectSession(t, polled.poll("/inbox"), alice)
		expectSession(t, browsed.get("/page"), bob)
		clock.Advance(4 * time.Minute)
		r := polled.do(http.MethodGet, "/events")
		expectSession(t, r, alice)
		if r.seen.URI != "/app" {
			t.Fatalf("the app saw %q, want the rewritten /app", r.seen.URI)
		}
		expectSession(t, browsed.get("/page"), bob)

		// 12 minutes after alice's last page, 4 after bob's.
		clock.Advance(4 * time.Minute)
		expectSession(t, polled.poll("/inbox"), map[string]string{})
		expectSession(t, browsed.get("/page"), bob)
		if polled.sid == "" {
			t.Fatal("an expired session's poll expired the cookie") // nothing was written
		}
	})
}

// TestNoTouchWriteKeepsKeysNotDeadline: a poll that sets keys stores them,
// and a poll that logs in gets a new ID, but neither moves the deadline.
func TestNoTouchWriteKeepsKeysNotDeadline(t *testing.T) {
	onEachStoreWith(t, pollDefs, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, pollOpts)
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		id := v.sid

		clock.Advance(4 * time.Minute)
		v.poll("/inbox", "X-Session-Set-Unread: 1")
		if v.sid != id {
			t.Fatal("a write of a poll changed the ID")
		}
		clock.Advance(4 * time.Minute)
		expectSession(t, v.poll("/inbox", "X-Session-Set-Unread: 2"), map[string]string{"X-Session-User": "alice", "X-Session-Unread": "1"})
		clock.Advance(time.Minute + 59*time.Second)
		expectSession(t, v.poll("/inbox"), map[string]string{"X-Session-User": "alice", "X-Session-Unread": "2"})
		clock.Advance(time.Second) // 10 minutes after the login
		expectSession(t, v.poll("/inbox"), map[string]string{})

		// A login by a poll rotates the ID, which keeps the anonymous
		// session's deadline.
		w := s.visitor()
		w.get("/shop", "X-Session-Set-Cart: apple")
		anon := w.sid
		clock.Advance(8 * time.Minute)
		w.poll("/login", "X-Session-Set-User: bob")
		if w.sid == anon || w.sid == "" {
			t.Fatal("a login by a poll did not rotate the ID")
		}
		clock.Advance(time.Minute)
		expectSession(t, w.poll("/inbox"), map[string]string{"X-Session-User": "bob", "X-Session-Cart": "apple"})
		clock.Advance(time.Minute) // 10 minutes after the cart
		expectSession(t, w.poll("/inbox"), map[string]string{})
	})
}

// TestTouchFalseCommand: a response with X-Session-Touch: false does what
// no_touch does, for that response; X-Session-Touch: true is refused, and
// the commands with it, and counted.
func TestTouchFalseCommand(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "idle_timeout 10m\n\t\ttouch_interval 1m")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		alice := map[string]string{"X-Session-User": "alice"}

		clock.Advance(4 * time.Minute)
		expectSession(t, v.get("/status", "X-Session-Touch: false"), alice)
		clock.Advance(4 * time.Minute)
		expectSession(t, v.get("/status", "X-Session-Touch: False", "X-Session-Set-Seen: 8"), alice)
		expectSession(t, v.get("/status", "X-Session-Touch: false"), map[string]string{"X-Session-User": "alice", "X-Session-Seen": "8"})
		clock.Advance(2 * time.Minute) // 10 minutes after the login
		expectSession(t, v.get("/status", "X-Session-Touch: false"), map[string]string{})

		w := s.visitor()
		w.get("/login", "X-Session-Set-User: bob")
		metric := `caddy_session_commands_rejected_total{reason="invalid_value"}`
		before := scrapeMetrics(t)[metric]
		clock.Advance(4 * time.Minute)
		r := w.get("/page", "X-Session-Touch: true", "X-Session-Set-Cart: apple")
		expectStatus(t, r, http.StatusOK) // still delivered
		if after := scrapeMetrics(t)[metric]; after != before+1 {
			t.Errorf("%s went from %v to %v, want one more", metric, before, after)
		}
		// Refused as a whole, the response was a request as any other: it
		// touched the session, and set no key.
		clock.Advance(8 * time.Minute)
		expectSession(t, w.get("/page"), map[string]string{"X-Session-User": "bob"})
	})
}

// TestPollingRecipe runs the README's polling recipe as written, with only
// its site address, store and upstream replaced: with the default timeouts,
// a polled session ends 30 minutes after its last page.
func TestPollingRecipe(t *testing.T) {
	up := startUpstream(t)
	s := recipeSite(t, "<!-- recipe: polling -->", up)

	polled, browsed := s.visitor(), s.visitor()
	polled.get("/login", "X-Session-Set-User: alice")
	browsed.get("/login", "X-Session-Set-User: bob")
	alice, bob := map[string]string{"X-Session-User": "alice"}, map[string]string{"X-Session-User": "bob"}
	for range 2 {
		clock.Advance(10 * time.Minute)
		expectSession(t, polled.poll("/inbox"), alice)
		expectSession(t, polled.get("/api/notifications"), alice)
		expectSession(t, browsed.get("/page"), bob)
	}
	clock.Advance(10 * time.Minute)
	expectSession(t, polled.get("/api/notifications"), map[string]string{})
	expectSession(t, browsed.get("/page"), bob)
}
