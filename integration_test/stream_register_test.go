package integration_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
)

// holdStreamOpening installs testhook.StreamOpening for the test: the
// first tunnel or stream about to be registered waits there until the
// returned release is called; reached is closed once it waits.
func holdStreamOpening(t *testing.T) (reached <-chan struct{}, release func()) {
	t.Helper()
	arrived, let := make(chan struct{}), make(chan struct{})
	var once, unblock sync.Once
	f := func() {
		once.Do(func() {
			close(arrived)
			<-let
		})
	}
	release = func() { unblock.Do(func() { close(let) }) }
	testhook.StreamOpening.Store(&f)
	t.Cleanup(func() {
		testhook.StreamOpening.Store(nil)
		release()
	})
	return arrived, release
}

// endedAtRegistration reads the answer to a stream whose session ended
// before it was registered, and fails unless it is one of the two a
// client may get: the withheld answer (answerWithheldStatus, none of the
// app's headers or body), or the stream's header with at most its first
// event, closed there, the app's side too.
func endedAtRegistration(t *testing.T, app *streamApp, br *bufio.Reader) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	assertNoNamespace(t, res.Header)
	switch res.StatusCode {
	case http.StatusForbidden:
		body, _ := io.ReadAll(res.Body)
		if ct := res.Header.Get("Content-Type"); strings.Contains(string(body), "hello") || ct == "text/event-stream" || ct == "application/octet-stream" {
			t.Fatalf("the withheld answer carries the app's stream: %q, Content-Type %q", body, ct)
		}
	case http.StatusOK:
		st := &openStream{t: t, app: app, body: res.Body, br: bufio.NewReader(res.Body)}
		st.closesPast("hello")
	default:
		t.Fatalf("the answer's status is %d, want the withheld 403 or the stream's 200 cut", res.StatusCode)
	}
}

// waitReached fails unless the held request reached the hook.
func waitReached(t *testing.T, reached <-chan struct{}) {
	t.Helper()
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the registration of its stream: the hook is not where the test expects it")
	}
}

// rawAnswer reads the answer to a request sendRaw wrote, and fails unless
// it has status.
func rawAnswer(t *testing.T, br *bufio.Reader, status int) *http.Response {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if res.StatusCode != status {
		t.Fatalf("the answer's status is %d, want %d", res.StatusCode, status)
	}
	return res
}

// sendRaw writes a GET of path with the visitor's cookie (and extra
// header lines) on a connection of its own, and returns the connection
// and its reader, the response not yet read.
func sendRaw(t *testing.T, v *visitor, path, extra string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", v.site.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid=%s\r\n%s\r\n", path, v.sid, extra)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn, bufio.NewReader(conn)
}

// TestStreamSeesAnEndCommittedWhileItRegisters: a response that streams
// (an event stream, a chunked download) or opens a tunnel is registered
// among the open tunnels, and looks at its session at once if an end was
// committed since its load (tunnel.go, ends). An end committed after the
// stream decided whether to look, but before it was registered, found no
// stream to close and was not looked for: the stream of a logged-out,
// revoked or evicted session flowed on until the periodic check (an hour
// here), and a renewal left it watching the old ID, so that the logout
// that followed did not cut it either. The hook holds the response at
// that point while the test commits the end.
func TestStreamSeesAnEndCommittedWhileItRegisters(t *testing.T) {
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			for _, kind := range []string{"events", "download", "websocket"} {
				for _, tt := range sessionEnds {
					if tt.options == "tunnels keep" {
						continue // nothing is registered: no point to hold
					}
					t.Run(kind+", "+tt.name, func(t *testing.T) {
						options := "idle_timeout 2h\n\t\t" + tt.options + "\n\t\ttunnels 1h"
						if kind == "websocket" {
							s, app := newTunnelSite(t, store, options)
							alice := login(t, s, "alice")
							reached, release := holdStreamOpening(t)
							conn, br := sendRaw(t, alice, "/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\n")
							waitReached(t, reached)
							tt.end(t, s, alice)
							release()
							rawAnswer(t, br, http.StatusSwitchingProtocols)
							ws := &wsTunnel{t: t, conn: conn, br: br}
							if tt.keeps {
								ws.echoes()
								expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
							}
							ws.closes(app)
							return
						}
						s, app := newStreamSite(t, store, options)
						alice := login(t, s, "alice")
						reached, release := holdStreamOpening(t)
						_, br := sendRaw(t, alice, "/events?kind="+kind, "Accept: text/event-stream\r\n")
						waitReached(t, reached)
						tt.end(t, s, alice)
						release()
						if !tt.keeps {
							// The look at registration closes it before
							// anything goes past it: the withheld answer
							// if reverse_proxy flushed the header before
							// the first event (its flush timer races the
							// copy), else the header and at most that
							// event, which was written before the look.
							endedAtRegistration(t, app, br)
							return
						}
						res := rawAnswer(t, br, http.StatusOK)
						assertNoNamespace(t, res.Header)
						st := &openStream{t: t, app: app, body: res.Body, br: bufio.NewReader(res.Body)}
						st.reads("hello")
						st.flows("still yours")
						// Watched under the session's new ID: its
						// logout cuts the stream.
						expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
						st.closes()
					})
				}
			}
		})
	}
}
