package integration_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/caddy-session/caddy-session/internal/testhook"
)

// TestLoginGivesBackItsAppConnectionBeforeItsCommit holds a login's
// commit and sends another request to the same app meanwhile, on bolt
// and Redis: reverse_proxy has read the login's page to its end and put
// its connection back in its pool, so the other request reuses it and
// the app sees one connection. Nothing of the login has reached its
// client by then; after the commit it gets the page and its cookie.
// Committed at its header, a login kept its app connection through the
// store's write: in a login storm of 64 clients reverse_proxy, which
// keeps 32 idle connections to an app, closed and dialed again about
// half of its connections for every group commit.
func TestLoginGivesBackItsAppConnectionBeforeItsCommit(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		var conns atomic.Int32
		app := httptest.NewUnstartedServer(http.HandlerFunc(serveUpstream))
		app.Config.ConnState = func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				conns.Add(1)
			}
		}
		app.Start()
		t.Cleanup(app.Close)
		s.up = &upstream{app}
		s.load()

		committing, release := make(chan struct{}), make(chan struct{})
		var held atomic.Bool
		hook := func() {
			if held.CompareAndSwap(false, true) { // the login's commit, the first
				close(committing)
				<-release
			}
		}
		testhook.ResponseCommitting.Store(&hook)
		t.Cleanup(func() { testhook.ResponseCommitting.Store(nil) })

		type answer struct {
			res  *http.Response
			body []byte
			err  error
		}
		login := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodGet, s.url("/login"), nil)
			req.Header.Add("Test-Header", "X-Session-Set-User: alice")
			res, err := s.tester.Client.Do(req)
			if err != nil {
				login <- answer{err: err}
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			login <- answer{res, body, err}
		}()
		<-committing

		expectStatus(t, s.visitor().get("/"), http.StatusOK)
		if n := conns.Load(); n != 1 {
			t.Errorf("the app saw %d connections: the login kept its own through its commit", n)
		}
		select {
		case a := <-login:
			t.Fatalf("the login was answered before its commit: %v %v", a.res, a.err)
		default:
		}
		close(release)
		a := <-login
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.res.StatusCode != http.StatusOK || len(a.body) == 0 {
			t.Fatalf("the login after its commit: %d, %d bytes", a.res.StatusCode, len(a.body))
		}
		issued := false
		for _, c := range a.res.Cookies() {
			issued = issued || c.Name == "sid" && c.Value != ""
		}
		if !issued {
			t.Fatalf("the login issued no session cookie: %v", a.res.Header)
		}
		assertNoNamespace(t, a.res.Header)
	})
}
