package integration_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// headerHold is a handler for the tests, placed between the session
// handler and reverse_proxy (`order test_hold before reverse_proxy`): the
// final response header of a request with Test-Hold: <id>, the app's
// answer with its commands, is held on its way to the session handler
// until the request's client has gone (it reset its HTTP/2 or HTTP/3
// stream, or closed its HTTP/1.1 connection), after telling the test on
// the channel that awaitHeld gave for <id> that the app has answered. A
// test so puts a client's departure exactly between the app's answer and
// the commit of its commands, which is otherwise a matter of microseconds.
type headerHold struct{}

var heldChans sync.Map // id → chan struct{}

func init() {
	caddy.RegisterModule(headerHold{})
	httpcaddyfile.RegisterHandlerDirective("test_hold", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return headerHold{}, nil
	})
}

func (headerHold) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.test_hold",
		New: func() caddy.Module { return new(headerHold) },
	}
}

func (headerHold) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ch, ok := heldChans.LoadAndDelete(r.Header.Get("Test-Hold"))
	if !ok {
		return next.ServeHTTP(w, r)
	}
	return next.ServeHTTP(&heldWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, r: r, held: ch.(chan struct{})}, r)
}

// heldWriter holds the final header of its response until its client has
// gone (headerHold).
type heldWriter struct {
	caddyhttp.ResponseWriterWrapper
	r    *http.Request
	held chan struct{}
	done bool
}

func (w *heldWriter) WriteHeader(status int) {
	if status >= http.StatusOK && !w.done {
		w.done = true
		close(w.held)
		select {
		case <-w.r.Context().Done():
		case <-time.After(10 * time.Second): // a guard: the test fails on its own
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *heldWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

var _ caddyhttp.MiddlewareHandler = headerHold{}

// awaitHeld returns a channel that headerHold closes when the app has
// answered the request that carries Test-Hold: id, and holds its header.
func awaitHeld(id string) <-chan struct{} {
	ch := make(chan struct{})
	heldChans.Store(id, ch)
	return ch
}

// newProtocolSite is newHTTPSSiteFor with this store line (`store bolt
// <db>` if empty), the test_done and test_hold handlers in place, in
// front of a hostileApp: HTTP/1.1, HTTP/2 and HTTP/3 on one port.
func newProtocolSite(t *testing.T, storeLine, options string) *site {
	t.Helper()
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      filepath.Join(t.TempDir(), "sessions.db"),
		options: options,
		up:      &upstream{httptest.NewServer(new(hostileApp))},
	}
	t.Cleanup(s.up.Close)
	s.store = storeLine
	if s.store == "" {
		s.store = "store bolt " + s.db
	}
	s.tester.Client.Jar = nil
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	local_certs
	skip_install_trust
	storage file_system %s
	order test_done first
	order test_hold before reverse_proxy
}
https://127.0.0.1:%d {
	tls internal
	test_done
	session {
		%s
		%s
	}
	test_hold
	reverse_proxy %s
}
`, adminPort, freePort(t), s.port, t.TempDir(), s.port, s.store, s.options, s.up.addr()))
	waitTLS(t, s.port)
	return s
}

// sendAndLeave sends GET path with this cookie and the app's commands,
// and goes away once the app has answered, before the session handler
// has committed them: the client cancels the request (HTTP/2 and HTTP/3
// reset the stream, HTTP/1.1 closes the connection). It returns once the
// server is done with the request.
func sendAndLeave(t *testing.T, s *site, client *http.Client, path, cookie string, commands ...string) {
	t.Helper()
	id := fmt.Sprintf("%s %s", t.Name(), path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpsURL(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", cookie)
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	req.Header.Set("Test-Hold", id)
	req.Header.Set("Test-Done", id)
	held, done := awaitHeld(id), awaitDone(id)
	errc := make(chan error, 1)
	go func() {
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-held: // the app has answered
	case err := <-errc:
		t.Fatalf("the request ended before the app answered it: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the app's answer never reached the hold")
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the canceled request was answered")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not finish the request whose client went away")
	}
}

// sessionOver is the session the app sees for a request with cookie, over
// client: its namespace headers.
func sessionOver(t *testing.T, s *site, client *http.Client, cookie string) map[string]string {
	t.Helper()
	r := httpsDo(t, client, http.MethodGet, s.httpsURL("/"), []string{cookie})
	expectStatus(t, r, http.StatusOK)
	return r.session()
}

// TestCommandsOfAnAnswerWhoseClientWentAway: the app has carried a request
// out and answered it with commands (a logout, a logout everywhere, the
// revocation of a stolen device, a change), and the client goes away
// before the session handler has committed them: a browser that leaves
// the page resets its HTTP/2 or HTTP/3 stream, or closes its HTTP/1.1
// connection, and a hostile client can do so on purpose. The commands
// are the app's word on the session, whoever still listens: they apply
// whole, as on a response that reached its client and was lost on the
// way back. A logout the app confirmed must not leave the session live
// for whoever holds the cookie next (a shared computer), nor a logout
// everywhere leave a stolen session live, nor stop halfway.
func TestCommandsOfAnAnswerWhoseClientWentAway(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"bolt", func(*testing.T) string { return "" }},
		{"redis", func(t *testing.T) string { return "store redis " + redistest.Start(t).URL() }},
	}
	rows := []struct {
		name string
		// commands of the app's answer, given the cookies of alice's
		// other device and of bob
		commands func(other string) []string
		// what the app sees afterwards for alice's cookie of the request,
		// for her other device and for bob (who must keep his)
		want, wantOther map[string]string
	}{
		{
			name:      "logout",
			commands:  func(string) []string { return []string{"X-Session-Destroy: true"} },
			want:      map[string]string{},
			wantOther: map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"},
		},
		{
			name:      "logout everywhere",
			commands:  func(string) []string { return []string{"X-Session-Destroy-All: true"} },
			want:      map[string]string{},
			wantOther: map[string]string{},
		},
		{
			name: "revocation of another device",
			commands: func(other string) []string {
				return []string{"X-Session-Revoke: " + session.HashID(other).Short()}
			},
			want:      map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"},
			wantOther: map[string]string{},
		},
		{
			// A rotation: the privilege the app took away is gone with the
			// old ID, which is rotated away (anonymous), as it would be
			// had the response, and its cookie, been lost on its way.
			name:      "a logout that keeps the cart",
			commands:  func(string) []string { return []string{"X-Session-Delete: user"} },
			want:      map[string]string{},
			wantOther: map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"},
		},
		{
			name:      "a change",
			commands:  func(string) []string { return []string{"X-Session-Set-Cart: pear"} },
			want:      map[string]string{"X-Session-User": "alice", "X-Session-Cart": "pear"},
			wantOther: map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"},
		},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := newProtocolSite(t, st.store(t), "")
			clients := []struct {
				name   string
				client *http.Client
			}{
				{"HTTP/1.1", h1Client(t)},
				{"HTTP/2", h2Client(t)},
				{"HTTP/3", h3Client(t, nil)},
			}
			for _, c := range clients {
				t.Run(c.name, func(t *testing.T) {
					for _, row := range rows {
						t.Run(row.name, func(t *testing.T) {
							login := func(user string) string {
								r := httpsDo(t, c.client, http.MethodGet, s.httpsURL("/login"), nil,
									"Test-Header", "X-Session-Set-User: "+user, "Test-Header", "X-Session-Set-Cart: apple")
								expectStatus(t, r, http.StatusOK)
								ck := r.sessionCookie()
								if ck == nil {
									t.Fatal("the login issued no session")
								}
								return ck.Value
							}
							alice, other, bob := login("alice"), login("alice"), login("bob")
							sendAndLeave(t, s, c.client, "/act", "sid="+alice, row.commands(other)...)

							if got := sessionOver(t, s, c.client, "sid="+alice); fmt.Sprint(got) != fmt.Sprint(row.want) {
								t.Errorf("alice's session of the request afterwards = %v, want %v", got, row.want)
							}
							if got := sessionOver(t, s, c.client, "sid="+other); fmt.Sprint(got) != fmt.Sprint(row.wantOther) {
								t.Errorf("alice's other device afterwards = %v, want %v", got, row.wantOther)
							}
							wantBob := map[string]string{"X-Session-User": "bob", "X-Session-Cart": "apple"}
							if got := sessionOver(t, s, c.client, "sid="+bob); fmt.Sprint(got) != fmt.Sprint(wantBob) {
								t.Errorf("bob's session afterwards = %v, want %v", got, wantBob)
							}
						})
					}
				})
			}
		})
	}
}
