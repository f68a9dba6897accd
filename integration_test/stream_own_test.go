package integration_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestStreamOfItsOwnCommands: a streamed response is watched under the
// session its own commands left. One that ended its session (a logout
// page sent in chunks, a logout everywhere) or made it another user's is
// not cut: the app answered knowing it, and cutting the answer would only
// lose it. One that renewed it is watched under the new ID: the renewed
// session's logout cuts it. Every row keeps the stream open past its own
// commit and checks what the session then is.
func TestStreamOfItsOwnCommands(t *testing.T) {
	tests := []struct {
		name     string
		commands []string
		user     string // the user of the visitor's cookie after the stream's commit; "" for none
		watched  bool   // the next logout of the visitor's session cuts the stream
	}{
		{"logout", []string{"X-Session-Destroy: true"}, "", false},
		{"logout everywhere", []string{"X-Session-Destroy-All: true"}, "", false},
		{"another user's login", []string{"X-Session-Set-User: bob"}, "bob", false},
		{"renewal of the same user", []string{"X-Session-Renew: true"}, "alice", true},
		{"a change of another key", []string{"X-Session-Set-Cart: 3"}, "alice", true},
		{"no commands", nil, "alice", true},
	}
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					s, app := newStreamSite(t, store, "idle_timeout 2h\n\t\ttunnels 1h")
					alice := login(t, s, "alice")
					st := startStream(t, alice, app, "events", tt.commands...)
					st.flows("after its own commit")
					if got := sessionOf(t, s, "sid="+alice.sid)["user"]; got != tt.user {
						t.Fatalf("after the stream's commands the cookie's user is %q, want %q", got, tt.user)
					}
					if tt.user != "" {
						expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
					}
					if tt.watched {
						st.closes()
						return
					}
					st.flows("still the app's answer")
				})
			}
		})
	}
}

// TestStreamTouchesItsSession: an open stream is a use of its session, as
// an open tunnel is (an event stream is a page in use): the session clock
// moves in steps shorter than idle_timeout, over three times
// idle_timeout, each followed by a check at the new time, and the stream
// stays open and the session alive. A stream whose request matched
// no_touch, or whose response said X-Session-Touch: false, is no use:
// the first check past idle_timeout cuts it, and the session is gone.
func TestStreamTouchesItsSession(t *testing.T) {
	const idle, step, steps = time.Hour, 25 * time.Minute, 8
	tests := []struct {
		name     string
		options  string
		commands []string
		use      bool
	}{
		{"a use", "", nil, true},
		{"no_touch", "no_touch /events", nil, false},
		{"X-Session-Touch: false", "", []string{"X-Session-Touch: false"}, false},
	}
	for _, backend := range []string{"bolt", "redis"} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s, %s", backend, tt.name), func(t *testing.T) {
				store := ""
				if backend == "redis" {
					store = "store redis " + redistest.Start(t).URL()
				}
				checks := tunnelChecks(t)
				s, app := newStreamSite(t, store, "idle_timeout 1h\n\t\ttouch_interval 1m\n\t\ttunnels 5ms\n\t\t"+tt.options)
				alice := login(t, s, "alice")
				st := startStream(t, alice, app, "events", tt.commands...)
				for i := 1; i <= steps; i++ {
					// The time of the step, read before it: a check
					// may read the clock, and close, as soon as it
					// moved, before this goroutine reads it.
					at := clock.Now().Add(step)
					clock.Advance(step)
					c := checkedAt(t, checks, at)
					past := time.Duration(i) * step
					if c.Closed != (!tt.use && past > idle) {
						t.Fatalf("after %s, closed: %v", past, c.Closed)
					}
					if c.Closed {
						st.closes()
						if got := sessionOf(t, s, "sid="+alice.sid); got["user"] != "" {
							t.Fatalf("the session opened after idle_timeout with no use but the stream: %v", got)
						}
						return
					}
				}
				if !tt.use {
					t.Fatal("a stream that is no use kept its session alive")
				}
				st.flows("still open")
				if got := sessionOf(t, s, "sid="+alice.sid); got["user"] != "alice" {
					t.Fatalf("after %s of an open stream the session is %v, want alice's", steps*step, got)
				}
			})
		}
	}
}
