package integration_test

import (
	"bufio"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// TestStreamSeesAnEndRedisToldOfWhileItRegisters: a stream registered
// after Redis told this process that its session's key changed (another
// instance ended it; here it is deleted behind Caddy's back) looks at
// its session at once, as it does after an end this process committed
// (TestStreamSeesAnEndCommittedWhileItRegisters). Before, it flowed on
// until its periodic check, an hour here. A change that ends nothing (a
// write of another key, on another tab) leaves it flowing.
func TestStreamSeesAnEndRedisToldOfWhileItRegisters(t *testing.T) {
	rows := []struct {
		name      string
		ended     bool
		meanwhile func(t *testing.T, srv *redistest.Server, alice *visitor)
	}{
		{"deleted behind Caddy's back", true, func(t *testing.T, srv *redistest.Server, alice *visitor) {
			if _, err := srv.Do("FLUSHALL"); err != nil {
				t.Fatal(err)
			}
		}},
		{"a write of another key", false, func(t *testing.T, _ *redistest.Server, alice *visitor) {
			expectStatus(t, alice.clone().get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			srv := redistest.Start(t)
			s, app := newStreamSite(t, "store redis "+srv.URL(), "idle_timeout 2h\n\t\ttunnels 1h")
			alice := login(t, s, "alice")
			reached, release := holdStreamOpening(t)
			_, br := sendRaw(t, alice, "/events?kind=events", "Accept: text/event-stream\r\n")
			waitReached(t, reached)
			told := redisToldOf(t, session.HashID(alice.sid).String())
			row.meanwhile(t, srv, alice)
			select {
			case <-told:
			case <-time.After(10 * time.Second):
				t.Fatal("redis never told this process that the session's key changed")
			}
			release()
			res := rawAnswer(t, br, http.StatusOK)
			st := &openStream{t: t, app: app, body: res.Body, br: bufio.NewReader(res.Body)}
			if row.ended {
				st.closesPast("hello") // the look closes it, before or after its first event
				return
			}
			st.reads("hello")
			st.flows("still yours")
		})
	}
}
