package integration_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// doneSignal is a handler for the tests, ordered first (`order test_done
// first`): once everything after it, the session handler included, has
// returned from a request with Test-Done: <id>, it closes the channel
// that awaitDone gave for <id>. A test so knows when the server has
// finished with a request whose client went away, which the client never
// learns.
type doneSignal struct{}

var doneChans sync.Map // id → chan struct{}

func init() {
	caddy.RegisterModule(doneSignal{})
	httpcaddyfile.RegisterHandlerDirective("test_done", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return doneSignal{}, nil
	})
}

func (doneSignal) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.test_done",
		New: func() caddy.Module { return new(doneSignal) },
	}
}

func (doneSignal) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	err := next.ServeHTTP(w, r)
	if ch, ok := doneChans.LoadAndDelete(r.Header.Get("Test-Done")); ok {
		close(ch.(chan struct{}))
	}
	return err
}

var _ caddyhttp.MiddlewareHandler = doneSignal{}

// awaitDone returns a channel that doneSignal closes when the server is
// done with the request that carries Test-Done: id.
func awaitDone(id string) <-chan struct{} {
	ch := make(chan struct{})
	doneChans.Store(id, ch)
	return ch
}

// stallingApp is hostileApp, but a request with Test-Stall waits, once it
// has reached the app, until its client has gone (Caddy cancels the
// request to the app then), telling the test on reached that it is there.
type stallingApp struct {
	hostileApp
	reached chan struct{}
}

func (a *stallingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Test-Stall") == "" {
		a.hostileApp.ServeHTTP(w, r)
		return
	}
	a.reached <- struct{}{}
	<-r.Context().Done()
}

// TestClientGoneBeforeTheResponseKeepsTheFlash: a browser that leaves a
// page before it arrives (a click on another link, the stop button)
// cancels its request: over HTTP/2 and HTTP/3 it resets the stream, over
// HTTP/1.1 it closes the connection, and reverse_proxy answers 499 with
// no word from the app. The request had taken the session's flash values
// for the app, whose page never reached the client; they are put back for
// the next page, as when a handler panics before the response began
// (README, "Flash values"), and the session is otherwise as it was.
func TestClientGoneBeforeTheResponseKeepsTheFlash(t *testing.T) {
	app := &stallingApp{reached: make(chan struct{})}
	s := newHTTPSSiteFor(t, app, "order test_done first", "test_done", "")
	navigation := []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html"}
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
			login := httpsDo(t, c.client, http.MethodGet, s.httpsURL("/login"), nil, "Test-Header", "X-Session-Set-User: alice")
			cookie := []string{"sid=" + login.sessionCookie().Value}
			httpsDo(t, c.client, http.MethodPost, s.httpsURL("/settings"), cookie, "Test-Header", "X-Session-Flash-Notice: Saved")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpsURL("/settings"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(navigation); i += 2 {
				req.Header.Set(navigation[i], navigation[i+1])
			}
			req.Header.Set("Cookie", cookie[0])
			req.Header.Set("Test-Stall", "1")
			req.Header.Set("Test-Done", t.Name())
			done := awaitDone(t.Name())
			errc := make(chan error, 1)
			go func() {
				res, err := c.client.Do(req)
				if err == nil {
					res.Body.Close()
				}
				errc <- err
			}()
			<-app.reached // the request took the flash values and reached the app
			cancel()
			if err := <-errc; err == nil {
				t.Fatal("the canceled request was answered")
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the server did not finish the canceled request")
			}

			r := httpsDo(t, c.client, http.MethodGet, s.httpsURL("/settings"), cookie, navigation...)
			expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Flash-Notice": "Saved"})
			// The next page took them.
			expectSession(t, httpsDo(t, c.client, http.MethodGet, s.httpsURL("/"), cookie, navigation...), map[string]string{"X-Session-User": "alice"})
		})
	}
}
