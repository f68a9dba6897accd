package integration_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// visitorStream is an upstream whose /stream answers a chunked page in
// two parts, each held until the test lets it go: its header and first
// line once the gate "head" opens, its last line once "next" does. Every
// other request is served as the harness's upstream serves it.
func visitorStream(t *testing.T, s *site) *gates {
	t.Helper()
	g := new(gates)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			serveUpstream(w, r)
			return
		}
		for _, gate := range []string{"head", "next"} {
			arrive, release := g.chans(gate)
			close(arrive)
			<-release
			w.Header().Set("Content-Type", "text/plain")
			if _, err := io.WriteString(w, gate+" for cart "+r.Header.Get("X-Session-Cart")+"\n"); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.openAll)
	s.up = &upstream{srv}
	s.load()
	return g
}

// TestVisitorStreamWatchedFromItsLogin: a visitor's page that streams (an
// app server sends a page of unknown length chunked, and reverse_proxy
// flushes it), whose session a login on another tab gives a user before
// its header, is delivered as the answer of a session with no user is
// (TestAnswerOfASessionWithNoUser), and its watch starts from that
// login: the rest of the page comes while alice's session stands, and
// an end of it, or of the visitor's session before the header, cuts it.
// The watch used to start from the load and took the login for an end:
// the page was cut right after its header, neither withheld nor
// delivered.
func TestVisitorStreamWatchedFromItsLogin(t *testing.T) {
	rows := []struct {
		name  string
		after func(t *testing.T, alice *visitor) // between the header and the rest
		cut   bool
	}{
		{"nothing", func(*testing.T, *visitor) {}, false},
		{"a write of alice's session", func(t *testing.T, alice *visitor) {
			expectStatus(t, alice.get("/cart", "X-Session-Set-Cart: plum"), http.StatusOK)
		}, false},
		{"logout of alice", func(t *testing.T, alice *visitor) {
			expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}, true},
		{"admin revocation of alice", func(t *testing.T, alice *visitor) {
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(alice.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
		}, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s := newSite(t, "idle_timeout 2h\n\t\ttunnels 1h")
				g := visitorStream(t, s)
				v := s.visitor()
				expectStatus(t, v.get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
				req, err := http.NewRequest(http.MethodGet, s.url("/stream"), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Cookie", "sid="+v.sid)
				client := &http.Client{Transport: &http.Transport{}}
				t.Cleanup(client.CloseIdleConnections)
				type opened struct {
					res *http.Response
					err error
				}
				got := make(chan opened, 1)
				go func() {
					res, err := client.Do(req)
					got <- opened{res, err}
				}()
				arrive, release := g.chans("head")
				within(t, "the page never reached the app", func() { <-arrive })
				alice := v.clone()
				expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
				if alice.sid == v.sid {
					t.Fatal("the login gave the session no new ID")
				}
				close(release)
				var o opened
				within(t, "the page's header never came", func() { o = <-got })
				if o.err != nil {
					t.Fatalf("the visitor's page beside its login: %v, want it delivered", o.err)
				}
				defer o.res.Body.Close()
				assertNoNamespace(t, o.res.Header)
				expectNoCookie(t, o.res, "a page beside the login")
				body := bufio.NewReader(o.res.Body)
				var first string
				within(t, "the page's first line never came", func() { first, err = body.ReadString('\n') })
				if o.res.StatusCode != http.StatusOK || first != "head for cart pear\n" {
					t.Fatalf("the page beside the login began %d %q (%v), want its first line", o.res.StatusCode, first, err)
				}
				row.after(t, alice)
				_, release = g.chans("next")
				close(release)
				var rest []byte
				within(t, "the page never ended", func() { rest, err = io.ReadAll(body) })
				if row.cut {
					if strings.Contains(string(rest), "next") || err == nil {
						t.Fatalf("after alice's session ended the page went on with %q (%v), want it cut", rest, err)
					}
					return
				}
				if err != nil || string(rest) != "next for cart pear\n" {
					t.Fatalf("the rest of the page is %q (%v), want its last line", rest, err)
				}
			})
		})
	}
}
