package integration_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// holdHeaderFirstServers are the servers whose app can send its header,
// with a Content-Length, before its body, and its path that does
// (hold-body): Express (res.flushHeaders) and a Go app over an h2c
// upstream. A WSGI server sends no header before the first byte of the
// body (PEP 3333), nor does PHP (flush() sends nothing before some
// output), so gunicorn, waitress and php-fpm have no such answer: theirs
// come with their first bytes, and are judged at their header
// (TestAppServersHeldAnswerAcrossItsSessionEnd). A body of unknown length
// is a stream: reverse_proxy flushes its header at once.
func holdHeaderFirstServers(t *testing.T) []holdServer {
	t.Helper()
	app := startAppServer(t, expressServer)
	out := []holdServer{{apps2Server: apps2Server{name: "express", serve: "reverse_proxy " + app.addr, command: "/emit"}, hold: "/hold-body"}}
	h2c := startH2CApp(t)
	return append(out, holdServer{
		apps2Server: apps2Server{
			name:    "h2c upstream",
			serve:   fmt.Sprintf("reverse_proxy %s {\n\t\ttransport http {\n\t\t\tversions h2c\n\t\t}\n\t}", h2c),
			command: "/emit",
		},
		hold: "/hold-body",
	})
}

// holdCommitted waits until the commit of the held request's header has
// set step=header in the session of sid: the header has reached Caddy
// and been judged. A readiness check with a deadline, not a sleep: the
// client sees nothing of a held header.
func holdCommitted(t *testing.T, sid string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for holdSessions(t)[hashOf("sid="+sid)].Values["step"] != "header" {
		if time.Now().After(deadline) {
			t.Fatal("the app's header never reached the session handler")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAppServersHeldHeaderWithheldWhenItsSessionEndsBeforeTheBody: the app
// sends its header at once (its commands applied; alice's session live),
// and its body later, a second or more after the request loaded the
// session. The session handler holds the header until the body's first
// bytes; when the session ends meanwhile (any end this Caddy commits),
// the client gets the withheld answer, a 403 with nothing of the app's
// and no cookie, rather than the app's header followed by a body cut
// before its first byte, which clients send again. A renewal of the same
// user delivers it. From Node, and over an h2c upstream, whose header
// comes from a transport of its own.
func TestAppServersHeldHeaderWithheldWhenItsSessionEndsBeforeTheBody(t *testing.T) {
	for _, srv := range holdHeaderFirstServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, end := range apps2Ends {
				t.Run(end.name, func(t *testing.T) {
					s := newApps2Site(t, srv.apps2Server, "", "idle_timeout 2h\n\t\ttunnels 1h")
					alice := apps2Login(t, s, srv.command, "alice")
					answer := srv.holdIn(t, s, alice, "X-Session-Set-Step:header")
					holdCommitted(t, alice.sid)
					end.end(t, s, srv.command, alice)
					clock.Advance(2 * time.Second) // the body comes a second or more after the load
					r := answer()
					if end.keeps {
						if r.res.StatusCode != http.StatusOK || !containsAlice(r.body) {
							t.Fatalf("after a renewal of the same user the answer is %d %q, want the app's", r.res.StatusCode, r.body)
						}
						return
					}
					withheld(t, r.res, r.body)
				})
			}
		})
	}
}

func containsAlice(body string) bool {
	for i := 0; i+5 <= len(body); i++ {
		if body[i:i+5] == "alice" {
			return true
		}
	}
	return false
}

// TestAppServersBufferedBodyCutWhenItsSessionEnds: the app sends its
// header and the first bytes of a body of known length at once, within
// a second of the load (nothing watches them), then the rest a second or
// more after it, once alice's session has ended. The first bytes are
// too few to have left Caddy (net/http buffers them); the cut must still
// give the client a response: the withheld 403, or the app's header with
// a body that ends unfinished, never a connection closed with no
// response at all, which clients answer by sending the request again
// (Go's client for a GET, browsers for a POST too), running the app a
// second time without the session.
func TestAppServersBufferedBodyCutWhenItsSessionEnds(t *testing.T) {
	for _, srv := range holdHeaderFirstServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, end := range apps2Ends {
				if end.keeps {
					continue
				}
				t.Run(end.name, func(t *testing.T) {
					s := newApps2Site(t, srv.apps2Server, "", "idle_timeout 2h\n\t\ttunnels 1h")
					alice := apps2Login(t, s, srv.command, "alice")
					answer := srv.holdWith(t, s, alice, []string{"first", "{\"greeting\":\"hi\"}\n"}, "X-Session-Set-Step:header")
					holdCommitted(t, alice.sid)
					end.end(t, s, srv.command, alice)
					clock.Advance(2 * time.Second)
					r := answer()
					if r.res == nil {
						t.Fatalf("the client got no response at all (%v): it sends the request again", r.err)
					}
					assertNoNamespace(t, r.res.Header)
					if containsAlice(r.body) {
						t.Fatalf("the app's answer to alice reached the device after her session ended: %q", r.body)
					}
					if r.res.StatusCode == http.StatusForbidden {
						withheld(t, r.res, r.body)
						return
					}
					if r.err == nil {
						t.Fatalf("the answer is %d %q, complete, after its session ended; want it withheld or cut", r.res.StatusCode, r.body)
					}
				})
			}
		})
	}
}
