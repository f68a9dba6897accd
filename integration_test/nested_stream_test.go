package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// denyEvents answers /events with a 401, which hands the request on to
// the second handler in the configs with a handle_response, and every
// other request as the first app.
type denyEvents struct{ namedApp }

func (d denyEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/events" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d.namedApp.ServeHTTP(w, r)
}

// TestTwiceStreamOfItsOwnCommands: a stream that the second handler
// passes, whose own commands ended its session or made it another
// user's, is not cut, by that handler or one around it: the app answered
// knowing it. A stream without commands is still watched, and a logout
// elsewhere cuts it.
func TestTwiceStreamOfItsOwnCommands(t *testing.T) {
	rows := []struct {
		name     string
		commands []string
		user     string // the cookie's user after the stream's commit
	}{
		{"logout", []string{"X-Session-Destroy: true"}, ""},
		{"logout everywhere", []string{"X-Session-Destroy-All: true"}, ""},
		{"another user's login", []string{"X-Session-Set-User: bob"}, "bob"},
		{"no commands", nil, "alice"},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range twiceConfigs {
			if strings.Contains(c.sites, "intercept") {
				// intercept keeps the first app's fields on the second's
				// answer, its Content-Length: 0 among them: no stream
				// reaches the client, with or without sessions.
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				app := &streamApp{events: make(chan string), closed: make(chan struct{}, 16)}
				s := newTwiceSite(t, c, store, "idle_timeout 2h\n\t\ttunnels 1h", denyEvents{namedApp{"First"}}, app)
				for _, row := range rows {
					t.Run(row.name, func(t *testing.T) {
						v := s.visitor()
						expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
						st := startStream(t, v, app, "events", row.commands...)
						st.flows("after its own commit")
						st.flows("and after that")
						if got := peekSession(t, s, v.sid)["user"]; got != row.user {
							t.Fatalf("after the stream's commands the cookie's user is %q, want %q", got, row.user)
						}
						if row.user == "" {
							return
						}
						expectStatus(t, v.do(http.MethodGet, "/logout", "Test-First-Header", "X-Session-Destroy: true"), http.StatusOK)
						if row.user == "alice" {
							st.closes()
							return
						}
						st.flows("bob's logout is not alice's session's end")
					})
				}
			})
		}
	})
}
