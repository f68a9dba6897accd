package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// replayMarked, when set, is called once the session handler has taken
// the final header of a response (its commit and its judgement done),
// before any byte of its body: test_replay_mark sits between the session
// handler and reverse_proxy.
var replayMarked atomic.Pointer[func()]

// replayMark is a handler for the replay tests: it tells replayMarked
// when the header it passes on to the session handler has been taken.
type replayMark struct{}

func init() {
	caddy.RegisterModule(replayMark{})
}

func (replayMark) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.test_replay_mark",
		New: func() caddy.Module { return new(replayMark) },
	}
}

func (replayMark) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(&markWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}, r)
}

type markWriter struct {
	*caddyhttp.ResponseWriterWrapper
}

func (m *markWriter) WriteHeader(status int) {
	m.ResponseWriterWrapper.WriteHeader(status)
	if status >= http.StatusOK {
		if f := replayMarked.Load(); f != nil {
			(*f)()
		}
	}
}

var _ caddyhttp.MiddlewareHandler = replayMark{}

// replayApp answers /held with its header at once and its body (of known
// length, so reverse_proxy never flushes it) only once the test lets it
// go: an app that sends its status early and takes its time over the
// page (a report, a payment's receipt). It counts every request for /held
// it receives: each is one execution of the app's work. Any other path is
// answered as serveUpstream does.
type replayApp struct {
	held    atomic.Int32
	arrived chan struct{} // told when the first /held has its header out
	release chan struct{} // lets the first /held's body go
}

func (a *replayApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/held" {
		serveUpstream(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	n := a.held.Add(1)
	if n > 1 {
		// A second execution of the same request: answered at once,
		// so that a failing test reports it rather than hangs.
		w.Header().Set("Content-Length", "5")
		_, _ = w.Write([]byte("again"))
		return
	}
	if r.URL.Query().Get("shape") == "late" {
		// The whole answer comes late, header and all.
		a.arrived <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Length", "7")
		_, _ = w.Write([]byte("receipt"))
		return
	}
	switch r.URL.Query().Get("shape") {
	case "chunked": // no length: reverse_proxy flushes each write
		w.Header().Set("Content-Type", "text/plain")
	case "events":
		w.Header().Set("Content-Type", "text/event-stream")
	case "empty":
		w.Header().Set("Content-Length", "0")
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "7")
	}
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	a.arrived <- struct{}{}
	select {
	case <-a.release:
	case <-r.Context().Done():
		return
	}
	if r.URL.Query().Get("shape") != "empty" {
		_, _ = w.Write([]byte("receipt"))
	}
}

// replaySite starts Caddy with session, the mark and reverse_proxy in
// front of a replayApp.
func replaySite(t *testing.T, store string) (*site, *replayApp) {
	t.Helper()
	return replaySiteWith(t, store, "")
}

// replaySiteWith is replaySite with more fields of reverse_proxy (JSON,
// each followed by a comma).
func replaySiteWith(t *testing.T, store, proxy string) (*site, *replayApp) {
	t.Helper()
	app := &replayApp{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-app.release:
		default:
			close(app.release)
		}
	})
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), store: store, up: &upstream{srv}}
	s.tester.Client.Jar = nil
	storeJSON := fmt.Sprintf(`{"backend": "bolt", "path": %q}`, strings.TrimPrefix(store, "store bolt "))
	if url, ok := strings.CutPrefix(store, "store redis "); ok {
		storeJSON = fmt.Sprintf(`{"backend": "redis", "url": %q}`, url)
	}
	s.tester.InitServer(fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:%d"],
		"routes": [{"handle": [
			{"handler": "session", "store": %s},
			{"handler": "test_replay_mark"},
			{"handler": "reverse_proxy", %s "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, adminPort, s.port, storeJSON, proxy, s.up.addr()), "json")
	return s, app
}

// replayAnswer is what the client got for a held request.
type replayAnswer struct {
	status int
	body   string
	err    error
}

// heldAcross sends method path (with body, if any) as v, with Go's
// client on the connection its last request left idle, runs meanwhile
// once the session handler has taken the app's header and before the
// app writes its body, a second or more after the load, and returns what
// the client got.
func heldAcross(t *testing.T, s *site, app *replayApp, v *visitor, method, path, body string, meanwhile func()) replayAnswer {
	t.Helper()
	marked := make(chan struct{}, 1)
	mark := func() {
		select { // only the first response's; never blocks a later one
		case marked <- struct{}{}:
		default:
		}
	}
	replayMarked.Store(&mark)
	t.Cleanup(func() { replayMarked.Store(nil) })

	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url(path), rb)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Cookie", "sid="+v.sid)
	done := make(chan replayAnswer, 1)
	go func() {
		res, err := s.tester.Client.Do(req)
		if err != nil {
			done <- replayAnswer{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- replayAnswer{status: res.StatusCode, body: string(b), err: err}
	}()
	within(t, "the app never got the request", func() { <-app.arrived })
	if !strings.Contains(path, "shape=late") {
		within(t, "the session handler never took the app's header", func() { <-marked })
	}
	meanwhile()
	clock.Advance(2 * time.Second) // the body comes a second or more after the load
	close(app.release)
	var got replayAnswer
	within(t, "the request hangs", func() { got = <-done })
	return got
}

// expectWithheldOnce fails unless the client got the withheld answer,
// and the app ran the request once.
func expectWithheldOnce(t *testing.T, app *replayApp, method string, got replayAnswer) {
	t.Helper()
	if got.err != nil {
		t.Errorf("the client got no answer but %v: a browser sends the %s again on a reused connection", got.err, method)
	} else if got.status != http.StatusForbidden || strings.Contains(got.body, "receipt") || got.body == "again" {
		t.Errorf("the client got %d %q, want the withheld answer, 403, with none of the app's body", got.status, got.body)
	}
	if n := app.held.Load(); n != 1 {
		t.Errorf("the app ran the %s %d times, want once", method, n)
	}
}

// TestCutBeforeTheBodyIsOneClearAnswer: the app sent its header, the
// session handler took it (its session standing then), and the session
// ended (a logout everywhere on another device, an admin's revocation)
// before the app's body came, a second or more after the load: the
// body is cut (README, "Streams": a body still being written a second
// after the load is watched). Nothing of the response had reached the
// client yet, so the client must get one clear answer, the withheld
// answer's 403, and the app must run the request once.
//
// It used to close the connection without a byte: the header sat in the
// server's buffer when the first write was cut, and the abort took it
// with it. A client that sees a reused connection close before any
// response sends the request again: Go's client does for a GET (the app
// ran it twice, and the client got the second answer, made without the
// session), and browsers do for any method, a POST included.
func TestCutBeforeTheBodyIsOneClearAnswer(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, s *site, phone *visitor)
	}{
		{"a logout everywhere on another device", func(t *testing.T, _ *site, phone *visitor) {
			expectStatus(t, phone.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
		}},
		{"an admin revocation of the user", func(t *testing.T, _ *site, _ *visitor) {
			var revoked struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &revoked)
			if revoked.Revoked == 0 {
				t.Fatal("the admin revocation ended no session")
			}
		}},
	}
	requests := []struct {
		method, body string
	}{
		{http.MethodGet, ""},
		{http.MethodPost, "item=42&pay=10.00"},
	}
	for _, end := range ends {
		for _, rq := range requests {
			t.Run(end.name+", "+rq.method, func(t *testing.T) {
				eachStore(t, func(t *testing.T, store string) {
					s, app := replaySite(t, store)
					laptop := login(t, s, "alice") // leaves an idle connection to reuse
					phone := login(t, s, "alice")
					got := heldAcross(t, s, app, laptop, rq.method, "/held", rq.body, func() { end.end(t, s, phone) })
					expectWithheldOnce(t, app, rq.method, got)
					expectUser(t, laptop, "")
				})
			})
		}
	}
}

// replayDevices is a replaySite with alice logged in on two devices, and
// the body a held request of method carries ("" for a GET).
func replayDevices(t *testing.T, store, method string) (s *site, app *replayApp, laptop, phone *visitor, body string) {
	t.Helper()
	s, app = replaySite(t, store)
	laptop = login(t, s, "alice")
	phone = login(t, s, "alice")
	if method == http.MethodPost {
		body = "item=42&pay=10.00"
	}
	return s, app, laptop, phone, body
}

// TestHeldHeaderShapes: the same across the shapes of a body that
// reverse_proxy copies, for a session that ends before the body and for
// one that stands (the app's whole answer, once, header and body). A
// body of known length, which reverse_proxy never flushes, is withheld
// (a 403, once). One of unknown length, or an event stream, is a stream:
// reverse_proxy flushes its header at once, before any body, from a timer
// that races the logout: flushed first, the client has the header, and
// the end cuts the stream unfinished (README, "Streams"), which no client
// sends again; flushed after, its registration reads the session before
// anything goes, and the client gets the withheld answer. Never the
// body; the app ran it once. Under a loaded machine the registration's
// read, made in a goroutine, came after the app's short body had gone
// whole. A
// response with no body has its header sent when the handlers are done.
func TestHeldHeaderShapes(t *testing.T) {
	for _, c := range []struct {
		shape   string
		ended   bool
		want    string // the body a standing session gets
		streams bool   // reverse_proxy flushes the header at once
	}{
		{"length", true, "", false},
		{"chunked", true, "", true},
		{"events", true, "", true},
		{"length", false, "receipt", false},
		{"chunked", false, "receipt", true},
		{"events", false, "receipt", true},
		{"empty", false, "", false},
	} {
		name := c.shape + ", session stands"
		if c.ended {
			name = c.shape + ", session ended"
		}
		t.Run(name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				t.Run(method, func(t *testing.T) {
					eachStore(t, func(t *testing.T, store string) {
						s, app, laptop, phone, body := replayDevices(t, store, method)
						got := heldAcross(t, s, app, laptop, method, "/held?shape="+c.shape, body, func() {
							if c.ended {
								expectStatus(t, phone.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
							}
						})
						switch {
						case c.ended && c.streams:
							// reverse_proxy's flush of the header races the
							// logout: registered first, the stream is cut
							// before its body; registered after, it finds
							// the end before anything went, and the client
							// gets the withheld answer. Never the body.
							cut := got.status == http.StatusOK && got.err != nil
							withheld := got.status == http.StatusForbidden && got.err == nil
							if !cut && !withheld || strings.Contains(got.body, "receipt") {
								t.Errorf("the client got %d %q (%v), want the stream's 200 header cut before its body, or the withheld 403", got.status, got.body, got.err)
							}
							if n := app.held.Load(); n != 1 {
								t.Errorf("the app ran the %s %d times, want once", method, n)
							}
							return
						case c.ended:
							expectWithheldOnce(t, app, method, got)
							return
						}
						if got.err != nil || got.status != http.StatusOK || got.body != c.want {
							t.Errorf("the client got %d %q (%v), want the app's 200 %q", got.status, got.body, got.err, c.want)
						}
						if n := app.held.Load(); n != 1 {
							t.Errorf("the app ran the %s %d times, want once", method, n)
						}
						expectUser(t, laptop, "alice")
					})
				})
			}
		})
	}
}

// TestOneRunWithProxyRetries: reverse_proxy retries a request that
// failed (lb_retries, lb_try_duration; a POST too, with lb_retry_match),
// but none of what the session handler does to a response whose session
// ended while the app worked on it fails the round trip: an answer
// withheld at its header, a body cut before anything was sent, a stream
// cut unfinished. Each reaches the app once, over the keep-alive
// connection to the upstream, and the client gets one answer.
func TestOneRunWithProxyRetries(t *testing.T) {
	const retries = `"load_balancing": {"retries": 3, "try_duration": 5000000000, "try_interval": 1000000, "retry_match": [{"method": ["GET", "POST"]}]},`
	for _, c := range []struct {
		name, shape string
		status      int // what the client gets; 200 for a stream cut unfinished
	}{
		{"withheld at its header", "late", http.StatusForbidden},
		{"cut before its body", "length", http.StatusForbidden},
		{"a stream cut unfinished", "events", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				t.Run(method, func(t *testing.T) {
					eachStore(t, func(t *testing.T, store string) {
						s, app := replaySiteWith(t, store, retries)
						laptop := login(t, s, "alice")
						phone := login(t, s, "alice")
						body := ""
						if method == http.MethodPost {
							body = "item=42&pay=10.00"
						}
						got := heldAcross(t, s, app, laptop, method, "/held?shape="+c.shape, body, func() {
							expectStatus(t, phone.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
						})
						if got.status != c.status || strings.Contains(got.body, "receipt") || got.body == "again" {
							t.Errorf("the client got %d %q (%v), want %d with none of the app's body", got.status, got.body, got.err, c.status)
						}
						if c.status != http.StatusOK && got.err != nil {
							t.Errorf("the client got no whole answer: %v", got.err)
						}
						if n := app.held.Load(); n != 1 {
							t.Errorf("the app ran the %s %d times, want once", method, n)
						}
						expectUser(t, laptop, "")
					})
				})
			}
		})
	}
}

// TestShortStreamOfASessionEndedBeforeItsFlush holds in place the
// interleaving TestHeldHeaderShapes leaves to chance: the logout is
// committed while the stream's first flush waits at its registration,
// and the app's short body follows at once. The registration read the
// session in a goroutine, which on a busy machine came after that body
// had reached the device that was logged out, whole. The read is made
// before the flush goes on now: nothing of the response was sent, and
// the client gets the withheld answer; the app ran once.
func TestShortStreamOfASessionEndedBeforeItsFlush(t *testing.T) {
	for _, shape := range []string{"chunked", "events"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(shape+", "+method, func(t *testing.T) {
				eachStore(t, func(t *testing.T, store string) {
					s, app, laptop, phone, body := replayDevices(t, store, method)
					reached, release := holdStreamOpening(t)
					got := heldAcross(t, s, app, laptop, method, "/held?shape="+shape, body, func() {
						waitReached(t, reached)
						expectStatus(t, phone.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
						release()
					})
					expectWithheldOnce(t, app, method, got)
				})
			})
		}
	}
}
