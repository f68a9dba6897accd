package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// A request may pass two session handlers of one session, or one handler
// twice, on its way to the app that answers it: a `session` nested in a
// `handle` beneath the site's, a `session` in the `handle_response` of
// `reverse_proxy` or `intercept` that the site's already served, the
// same named route invoked again from a `handle_response`. The innermost
// handler takes the commands of the app that answers; the handlers
// around it then commit the same response again, with none left. What
// those commands said of the session must still hold for them: the
// request is no use of the session after X-Session-Touch: false, and a
// stream is not cut by its own logout.

// twiceConfig is a site on $PORT whose requests reach a second session
// handler (or the first again) before the app that answers: $FIRST
// answers first, and a 401 of it hands the request on to $SECOND. $OUTER
// are the options of the first handler the request reaches and $INNER
// those of the second (the named route's one handler has $OUTER's);
// newTwiceSite gives both the same, nestedConfig each its own.
type twiceConfig struct{ name, sites string }

var twiceConfigs = []twiceConfig{
	{"a session in a handle beneath the site's", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	@again path /again/* /events
	handle @again {
		session {
			$STORE
			$INNER
		}
		reverse_proxy $SECOND
	}
	reverse_proxy $FIRST
}`},
	{"a session in reverse_proxy's handle_response", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	reverse_proxy $FIRST {
		@again status 401
		handle_response @again {
			session {
				$STORE
				$INNER
			}
			reverse_proxy $SECOND
		}
	}
}`},
	{"a session in intercept's handle_response", `
http://127.0.0.1:$PORT {
	session {
		$STORE
		$OUTER
	}
	intercept {
		@again status 401
		handle_response @again {
			session {
				$STORE
				$INNER
			}
			reverse_proxy $SECOND
		}
	}
	reverse_proxy $FIRST
}`},
	{"one named route invoked twice", `
&(sess) {
	session {
		$STORE
		$OUTER
	}
}
http://127.0.0.1:$PORT {
	invoke sess
	reverse_proxy $FIRST {
		@again status 401
		handle_response @again {
			invoke sess
			reverse_proxy $SECOND
		}
	}
}`},
}

// twicePath is where the request goes to reach the second handler:
// /again/ under the handle, and any path elsewhere, where $FIRST's 401
// hands it on.
const twicePath = "/again/page"

// namedApp answers with what it was sent, obeying only the orders
// addressed to it: Test-<name>-Header and Test-<name>-Status.
type namedApp struct{ name string }

func (a namedApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, o := range r.Header.Values("Test-" + a.name + "-Header") {
		name, value, _ := strings.Cut(o, ":")
		w.Header().Add(name, strings.TrimSpace(value))
	}
	status := http.StatusOK
	if s := r.Header.Get("Test-" + a.name + "-Status"); s != "" {
		fmt.Sscan(s, &status)
	}
	body, _ := json.Marshal(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// newTwiceSite starts the config with first and second as its apps.
func newTwiceSite(t *testing.T, c twiceConfig, store, opts string, first, second http.Handler) *site {
	t.Helper()
	a, b := httptest.NewServer(first), httptest.NewServer(second)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), store: store, up: &upstream{a}}
	s.tester.Client.Jar = nil
	sites := strings.NewReplacer("$OUTER", opts, "$INNER", opts, "$FIRST", a.Listener.Addr().String(), "$SECOND", b.Listener.Addr().String()).Replace(c.sites)
	s.tester.InitServer(s.expand(sites), "caddyfile")
	return s
}

// TestTwiceHandledResponseKeepsItsWord: the app behind the second handler
// answers with commands; each applies once, and what they say of the
// session holds for the handlers around: X-Session-Touch: false leaves
// the idle deadline where it was (the session ends 10 minutes after the
// login, not after this request), and another user's login is no
// request in flight that lost its commands.
func TestTwiceHandledResponseKeepsItsWord(t *testing.T) {
	rows := []struct {
		name     string
		commands []string
		// user and cart after the request, and after 7 more minutes: 11
		// past the login, 7 past this request, with idle_timeout 10m.
		after, later map[string]string
	}{
		{"X-Session-Touch: false with a key", []string{"X-Session-Touch: false", "X-Session-Set-Cart: pear"},
			map[string]string{"user": "alice", "cart": "pear"}, map[string]string{}},
		{"X-Session-Touch: false alone", []string{"X-Session-Touch: false"},
			map[string]string{"user": "alice"}, map[string]string{}},
		{"a use", []string{"X-Session-Set-Cart: pear"},
			map[string]string{"user": "alice", "cart": "pear"}, map[string]string{"user": "alice", "cart": "pear"}},
		{"a read", nil,
			map[string]string{"user": "alice"}, map[string]string{"user": "alice"}},
		{"another user's login", []string{"X-Session-Set-User: bob"},
			map[string]string{"user": "bob"}, map[string]string{"user": "bob"}},
		{"a logout", []string{"X-Session-Destroy: true"},
			map[string]string{}, map[string]string{}},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range twiceConfigs {
			t.Run(c.name, func(t *testing.T) {
				s := newTwiceSite(t, c, store, "idle_timeout 10m\n\t\ttouch_interval 1m", namedApp{"First"}, namedApp{"Second"})
				for _, row := range rows {
					t.Run(row.name, func(t *testing.T) {
						v := s.visitor()
						expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
						if v.sid == "" {
							t.Fatal("the login set no cookie")
						}
						clock.Advance(4 * time.Minute)
						dropped := scrapeMetrics(t)[`caddy_session_commands_dropped_total{reason="identity_changed"}`]
						r := v.do(http.MethodGet, twicePath, append([]string{"Test-First-Status", "401"}, prefixed("Test-Second-Header", row.commands)...)...)
						expectStatus(t, r, http.StatusOK)
						if got := r.seen.Headers.Get("X-Session-User"); got != "alice" {
							t.Fatalf("the second app saw user %q, want alice", got)
						}
						if n := scrapeMetrics(t)[`caddy_session_commands_dropped_total{reason="identity_changed"}`]; n != dropped {
							t.Fatalf("commands were counted dropped (%v, was %v): an outer handler acted on the session the response had left", n, dropped)
						}
						if got := peekSession(t, s, v.sid); !mapsEqual(got, row.after) {
							t.Fatalf("the session after the request = %v, want %v", got, row.after)
						}
						clock.Advance(7 * time.Minute)
						if got := peekSession(t, s, v.sid); !mapsEqual(got, row.later) {
							t.Fatalf("the session 11 minutes after the login, 7 after the request = %v, want %v", got, row.later)
						}
					})
				}
			})
		}
	})
}

// prefixed is the orders name: command for each command.
func prefixed(name string, commands []string) []string {
	var out []string
	for _, c := range commands {
		out = append(out, name, c)
	}
	return out
}

// peekSession is what the first app sees of the session of the cookie,
// by a request that is no use of it (X-Session-Touch: false) and passes
// one session handler: its keys, lowercase, and values.
func peekSession(t *testing.T, s *site, sid string) map[string]string {
	t.Helper()
	v := &visitor{site: s, sid: sid}
	r := v.do(http.MethodGet, "/peek", "Test-First-Header", "X-Session-Touch: false")
	expectStatus(t, r, http.StatusOK)
	out := map[string]string{}
	for name, vals := range r.session() {
		out[strings.ToLower(strings.TrimPrefix(name, "X-Session-"))] = vals
	}
	return out
}
