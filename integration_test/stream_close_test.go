package integration_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// streamApp is the app behind Caddy in the stream tests: /events answers
// with a response that never ends on its own (an event stream, or a
// chunked download with no Content-Length, both of which reverse_proxy
// flushes at once), sends each string of events on it, and reports on
// closed when the request's context ends. Any other request is answered
// as serveUpstream does, so that visitors log in and out through it.
type streamApp struct {
	events chan string
	closed chan struct{}
}

func (a *streamApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/events" {
		serveUpstream(w, r)
		return
	}
	defer func() { a.closed <- struct{}{} }()
	obeyOrders(w, r) // the stream's own commands, if the test gives any
	if r.URL.Query().Get("kind") == "download" {
		w.Header().Set("Content-Type", "application/octet-stream")
	} else {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	w.WriteHeader(http.StatusOK)
	send := func(data string) bool {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return false
		}
		return http.NewResponseController(w).Flush() == nil
	}
	if !send("hello") {
		return
	}
	for {
		select {
		case e := <-a.events:
			if !send(e) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// newStreamSite is newSiteOn with streamApp as the upstream.
func newStreamSite(t *testing.T, store, options string) (*site, *streamApp) {
	t.Helper()
	app := &streamApp{events: make(chan string), closed: make(chan struct{}, 16)}
	return newSiteBefore(t, store, options, app), app
}

// openStream is a streamed response through Caddy, as a browser's
// EventSource (or a download) reads it.
type openStream struct {
	t    *testing.T
	app  *streamApp
	body io.ReadCloser
	br   *bufio.Reader
	// appClosed: the app's side of the stream was seen to end.
	appClosed bool
}

// startStream opens /events with the visitor's cookie and reads the
// stream's first event.
func startStream(t *testing.T, v *visitor, app *streamApp, kind string, commands ...string) *openStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.site.url("/events?kind="+kind), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cookie", "sid="+v.sid)
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	// A client of its own: the tester's gives up on a response after 5s,
	// which would end the stream whatever its session did.
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("opening the stream: %v", err)
	}
	st := &openStream{t: t, app: app, body: res.Body, br: bufio.NewReader(res.Body)}
	t.Cleanup(st.end)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the stream's status is %d, want 200", res.StatusCode)
	}
	assertNoNamespace(t, res.Header)
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			v.sid = c.Value
			if c.MaxAge < 0 {
				v.sid = ""
			}
		}
	}
	st.reads("hello")
	return st
}

// end closes the client's side of the stream once the test is over, and
// waits for the app's side to end too: a later stream of the same app
// must get the events the test sends it, and a lingering one, still
// selecting on the app's events, would take them.
func (st *openStream) end() {
	st.body.Close()
	if st.appClosed {
		return
	}
	select {
	case <-st.app.closed:
	case <-time.After(10 * time.Second):
		st.t.Error("the app's side of the stream is still open after its client closed it")
	}
}

// reads fails unless the next event of the stream is data.
func (st *openStream) reads(data string) {
	st.t.Helper()
	var line string
	var err error
	within(st.t, "the stream hangs: no event came", func() {
		line, err = st.br.ReadString('\n')
		if err == nil {
			_, err = st.br.ReadString('\n') // the blank line that ends the event
		}
	})
	if err != nil || line != "data: "+data+"\n" {
		st.t.Fatalf("the stream gave %q (%v), want the event %q: it is closed", line, err, data)
	}
}

// flows fails unless an event the app sends now reaches the client.
func (st *openStream) flows(data string) {
	st.t.Helper()
	select {
	case st.app.events <- data:
	case <-time.After(10 * time.Second):
		st.t.Fatal("the app's stream no longer takes events: it was closed")
	}
	st.reads(data)
}

// closes fails unless Caddy ends the stream toward the client, with
// nothing more of it delivered, and the app's request ends too. The
// bound only ends a failing test: a stream that closes does so at once.
func (st *openStream) closes() {
	st.t.Helper()
	st.closesPast("")
}

// closesPast is closes for a stream that a check at its registration
// found ended: the check may close it before its first event (first) or
// after, so the event may come, and nothing after it.
func (st *openStream) closesPast(first string) {
	st.t.Helper()
	var rest []byte
	within(st.t, "the stream is still open after its session ended", func() {
		rest, _ = io.ReadAll(st.br)
	})
	if first != "" {
		rest = bytes.TrimPrefix(rest, []byte("data: "+first+"\n\n"))
	}
	if len(rest) != 0 {
		st.t.Fatalf("the stream delivered %q after its session ended", rest)
	}
	select {
	case <-st.app.closed:
		st.appClosed = true
	case <-time.After(10 * time.Second):
		st.t.Fatal("the app's side of the stream is still open after its session ended")
	}
}

// TestStreamClosesWhenItsSessionEnds: a response that streams (an event
// stream, a chunked download) of a request that carried a live session
// is, like a tunnel, that session's user's data flowing for as long as it
// is open. When the session ends, by any of the ends this Caddy commits,
// the stream is cut, toward the client and toward the app, before the
// end's response is out (the check interval is an hour: only the prompt
// close can close these); a renewal of the same user keeps it, and
// follows the session to its new ID; `tunnels keep` keeps it.
func TestStreamClosesWhenItsSessionEnds(t *testing.T) {
	eachSessionEnd(t, func(t *testing.T, store, options string, tt sessionEnd) {
		for _, kind := range []string{"events", "download"} {
			t.Run(kind, func(t *testing.T) {
				s, app := newStreamSite(t, store, options)
				alice := login(t, s, "alice")
				st := startStream(t, alice, app, kind)
				tt.end(t, s, alice)
				if !tt.keeps {
					st.closes()
					return
				}
				st.flows("still yours")
				if tt.options == "tunnels keep" {
					return
				}
				// Still watched under the session's new ID: its logout
				// cuts the stream.
				expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
				st.closes()
			})
		}
	})
}

// TestStreamClosesWhenItsSessionEndsElsewhere: an end this Caddy does not
// commit (the session's deadline passing on the injected clock, or the
// session deleted in Redis behind Caddy's back, as another instance's
// logout would) is found by the periodic check, as for a tunnel.
func TestStreamClosesWhenItsSessionEndsElsewhere(t *testing.T) {
	t.Run("absolute deadline", func(t *testing.T) {
		s, app := newStreamSite(t, "", "absolute_timeout 1h\n\t\tidle_timeout 1h\n\t\ttouch_interval 1s\n\t\ttunnels 20ms")
		alice := login(t, s, "alice")
		st := startStream(t, alice, app, "events")
		st.flows("before")
		clock.Advance(2 * time.Hour)
		st.closes()
	})
	t.Run("deleted in redis behind caddy's back", func(t *testing.T) {
		srv := redistest.Start(t)
		s, app := newStreamSite(t, "store redis "+srv.URL(), "tunnels 20ms")
		alice := login(t, s, "alice")
		st := startStream(t, alice, app, "events")
		st.flows("before")
		if _, err := srv.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		st.closes()
	})
}

// TestStreamOfAnAnonymousRequestIsNotCut: a stream that carried no
// session has none to end: a logout of another visitor leaves it alone.
func TestStreamOfAnAnonymousRequestIsNotCut(t *testing.T) {
	s, app := newStreamSite(t, "", "tunnels 20ms")
	alice := login(t, s, "alice")
	st := startStream(t, s.visitor(), app, "events")
	expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	st.flows("anyone's")
}
