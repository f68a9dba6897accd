package integration_test

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// A session matcher that Caddy evaluates before the session handler runs
// (the matcher of a directive ordered before `session`: `header`, `vars`,
// `log_skip`, `request_body`; or a matcher in a `route` block above the
// handler) loads the request's session, and the handler adopts that load.
// The handler took its mark of the ends this process had seen only when
// it ran, after that load: a logout committed while the matcher's read
// was in flight was then "before the load", the answer was not judged
// again, and the app's answer, computed for the user who had just logged
// out, reached the device that was logged out. Without the matcher the
// same interleaving withholds it (the first row).
func TestMatcherLoadWithholdsAnswersOfEndedSessions(t *testing.T) {
	rows := []struct {
		name, site string
	}{
		{name: "the handler reads the session itself", site: `
	session {
		$STORE
	}
	reverse_proxy $APP`},
		{name: "a header matcher reads it before the handler", site: `
	@admins session role admin
	header @admins Cache-Control no-store
	@outsiders {
		not session role admin
		not path /login
	}
	session {
		$STORE
	}
	respond @outsiders "not an admin" 403
	reverse_proxy $APP`},
		{name: "a log_skip matcher of the anonymous reads it before the handler", site: `
	@anonymous not session user
	log_skip @anonymous
	session {
		$STORE
	}
	reverse_proxy $APP`},
		{name: "a matcher in a route block above the handler", site: `
	route {
		@admins session role admin
		vars @admins area admin
		session {
			$STORE
		}
		reverse_proxy @admins $APP
		reverse_proxy /login $APP
		respond "not an admin" 403
	}`},
		{name: "a nested handler adopts the site handler's load", site: `
	session {
		$STORE
	}
	route /admin* {
		@admins session role admin
		header @admins Cache-Control no-store
		session {
			$STORE
			idle_timeout 1h
		}
		reverse_proxy @admins $APP
		respond "not an admin" 403
	}
	reverse_proxy $APP`},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st string) {
				st = strings.Replace(st, "store ", "store hold_after_read ", 1)
				s, _ := newSiteFrom(t, st, "http://127.0.0.1:$PORT {"+row.site+"\n}\n")
				for _, shape := range heldAnswerShapes {
					for _, end := range []bool{false, true} {
						alice := s.visitor()
						expectStatus(t, alice.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Role: admin"), http.StatusOK)
						if alice.sid == "" {
							t.Fatal("the login issued no session")
						}
						hold := holdNextRead(t, alice.sid)
						answer := sendHeld(t, s, "/admin/report", alice.sid, shape.orders...)
						hold.wait(t)
						if end {
							// Another tab of alice's logs out while the
							// read of this request is in flight.
							other := &visitor{site: s, sid: alice.sid}
							expectStatus(t, other.get("/admin/logout", "X-Session-Destroy: true"), http.StatusOK)
						}
						close(hold.release)
						res, body, hints := answer()
						if end {
							withheld(t, res, body)
							if len(hints) != 0 {
								t.Fatalf("%s: the app's early hints for alice reached the device she logged out: %v", shape.name, hints)
							}
							after := (&visitor{site: s, sid: alice.sid}).get("/admin/report")
							if strings.Contains(string(after.body), "alice") {
								t.Fatalf("%s: the session still stands after the logout: %d %s", shape.name, after.StatusCode, after.body)
							}
							continue
						}
						if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Session-User":["alice"]`) {
							t.Fatalf("%s: with no end in between, alice got %d %q, want the app's answer to her", shape.name, res.StatusCode, body)
						}
						if shape.hints && len(hints) == 0 {
							t.Fatalf("%s: with no end in between, the app's early hints did not reach alice", shape.name)
						}
					}
				}
			})
		})
	}
}

// heldAnswerShapes are the ways the app answers: each is judged before
// any byte of it reaches the client.
var heldAnswerShapes = []struct {
	name   string
	orders []string // the app's orders, header name and value
	hints  bool     // the app sends a 103 before its answer
}{
	{name: "a plain answer"},
	{name: "a streamed answer", orders: []string{"Test-Flush", "1"}},
	{name: "an answer after early hints", orders: []string{"Test-Early-Hints", "Link: </alice.png>; rel=preload"}, hints: true},
}

// sendHeld sends a GET with the session cookie of id, and the
// orders (header name, value) for the app, on a client of its own, and
// returns a function that waits for its answer: the response, its body
// and the 1xx responses that came before it.
func sendHeld(t *testing.T, s *site, path, id string, orders ...string) func() (*http.Response, string, []textproto.MIMEHeader) {
	t.Helper()
	var (
		mu    sync.Mutex
		hints []textproto.MIMEHeader
	)
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		hints = append(hints, h)
		mu.Unlock()
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, s.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(orders); i += 2 {
		req.Header.Add(orders[i], orders[i+1])
	}
	req.Header.Set("Cookie", "sid="+id)
	done := sendAside(t, req, &http.Transport{})
	return func() (*http.Response, string, []textproto.MIMEHeader) {
		t.Helper()
		r := <-done
		if r.err != nil {
			t.Fatalf("GET %s: %v", path, r.err)
		}
		assertNoNamespace(t, r.res.Header)
		mu.Lock()
		defer mu.Unlock()
		return r.res, r.body, hints
	}
}
