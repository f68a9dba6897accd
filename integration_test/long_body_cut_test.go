package integration_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// downloadPart is each half of a slow download's body: large enough to
// pass every buffer on the way, so that the client holds the first half
// while the app still holds the second.
const downloadPart = 256 << 10

// slowDownloadApp answers /download with a body of known length in two
// halves, the second once the test lets it go (more): a large export, or
// a slow app, that never flushes. reverse_proxy flushes no body whose
// length it knows, so the response is never a stream by its flushes.
// Any other request is answered as serveUpstream does.
type slowDownloadApp struct {
	sent chan struct{} // the first half is written
	more chan struct{} // let the second half go
	// begin, if set, holds the answer before its header until the test
	// closes it; arrived is told when the request is there.
	begin, arrived chan struct{}
}

func (a *slowDownloadApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/download" {
		serveUpstream(w, r)
		return
	}
	if a.begin != nil {
		a.arrived <- struct{}{}
		<-a.begin
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(2*downloadPart))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(bytes.Repeat([]byte("a"), downloadPart)); err != nil {
		return
	}
	a.sent <- struct{}{}
	select {
	case <-a.more:
	case <-r.Context().Done():
		return
	}
	w.Write(bytes.Repeat([]byte("b"), downloadPart))
}

// downloadAcross downloads /download as v, and runs meanwhile once the
// first half has reached the client and before the app writes the
// second: it returns what the client got before and after.
func downloadAcross(t *testing.T, v *visitor, app *slowDownloadApp, meanwhile func()) (first, rest []byte) {
	t.Helper()
	res := openDownload(t, v, "/download")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the download's status is %d, want 200", res.StatusCode)
	}
	first = make([]byte, downloadPart/2)
	var err error
	within(t, "the first half of the download never came", func() {
		_, err = io.ReadFull(res.Body, first)
	})
	if err != nil {
		t.Fatalf("reading the first half: %v", err)
	}
	<-app.sent
	meanwhile()
	close(app.more)
	within(t, "the download hangs", func() {
		rest, _ = io.ReadAll(res.Body)
	})
	return first, rest
}

// openDownload sends a GET of path with v's cookie, through a client of
// its own that asks for no compression (the tester's gives up after 5s),
// and returns the response, its body to be read; it is closed when the
// test ends.
func openDownload(t *testing.T, v *visitor, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.site.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "sid="+v.sid)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// expectDownload fails unless the download was cut before the app's
// second half, if cut, or else delivered whole.
func expectDownload(t *testing.T, first, rest []byte, cut bool) {
	t.Helper()
	got := len(first) + len(rest)
	if cut && bytes.Contains(rest, []byte("b")) {
		t.Fatalf("the download went on after its session ended: %d bytes of %d, the app's second half among them", got, 2*downloadPart)
	}
	if !cut && (got != 2*downloadPart || !bytes.Contains(rest, []byte("b"))) {
		t.Fatalf("the download gave %d bytes of %d: a session that stands gets the whole body", got, 2*downloadPart)
	}
}

// TestLongBodyCutWhenItsSessionEnds: a body still being written a second
// or more after its request loaded the session (a large or slow download
// the app never flushes), whose session ended meanwhile, is cut at its
// next write, as a stream is: the device that was logged out gets none of
// the rest. A renewal of the same user and `tunnels keep` deliver the
// whole body.
func TestLongBodyCutWhenItsSessionEnds(t *testing.T) {
	eachSessionEnd(t, func(t *testing.T, store, options string, end sessionEnd) {
		app := &slowDownloadApp{sent: make(chan struct{}, 1), more: make(chan struct{})}
		s := newSiteBefore(t, store, options, app)
		alice := login(t, s, "alice")
		first, rest := downloadAcross(t, alice, app, func() {
			end.end(t, s, alice)
			clock.Advance(2 * time.Second)
		})
		expectDownload(t, first, rest, !end.keeps)
	})
}

// TestLongBodyOfASessionWithNoUser: a long body is judged as an answer
// is (TestAnswerOfASessionWithNoUser), not as a stream: the download of a
// visitor's session, with no user, goes on when a login on another tab
// gives that session a user meanwhile (the app computed it for no one),
// and is cut when the session ends.
func TestLongBodyOfASessionWithNoUser(t *testing.T) {
	rows := []struct {
		name      string
		meanwhile func(t *testing.T, v *visitor)
		cut       bool
	}{
		{"login on another tab", func(t *testing.T, v *visitor) {
			expectStatus(t, v.clone().get("/login", "X-Session-Set-User: alice"), http.StatusOK)
		}, false},
		{"logout on another tab", func(t *testing.T, v *visitor) {
			expectStatus(t, v.clone().get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}, true},
	}
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			for _, row := range rows {
				t.Run(row.name, func(t *testing.T) {
					app := &slowDownloadApp{sent: make(chan struct{}, 1), more: make(chan struct{})}
					s := newSiteBefore(t, store, "idle_timeout 2h\n\t\ttunnels 1h", app)
					v := s.visitor()
					expectStatus(t, v.get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
					first, rest := downloadAcross(t, v, app, func() {
						row.meanwhile(t, v)
						clock.Advance(2 * time.Second)
					})
					expectDownload(t, first, rest, row.cut)
				})
			}
		})
	}
}

// TestLongBodyJudgedAtItsHeaderThenEnded: a long body whose header was
// judged (its session read again, found standing: an end of another
// session came between its load and its header) and whose session ended
// after that is still judged at its first write past the second, before
// that write goes: the check that registering the body starts runs
// beside the copy, which could send the rest before it.
func TestLongBodyJudgedAtItsHeaderThenEnded(t *testing.T) {
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			app := &slowDownloadApp{sent: make(chan struct{}, 1), more: make(chan struct{}),
				begin: make(chan struct{}), arrived: make(chan struct{}, 1)}
			s := newSiteBefore(t, store, "idle_timeout 2h\n\t\ttunnels 1h", app)
			alice, bob := login(t, s, "alice"), login(t, s, "bob")
			bobOut := make(chan int, 1)
			go func() {
				<-app.arrived
				// An end between the load and the header: the header's
				// judgement reads the session, and finds it standing.
				bobOut <- bob.get("/logout", "X-Session-Destroy: true").StatusCode
				close(app.begin)
			}()
			first, rest := downloadAcross(t, alice, app, func() {
				expectStatus(t, alice.clone().get("/logout", "X-Session-Destroy: true"), http.StatusOK)
				clock.Advance(2 * time.Second)
			})
			if status := <-bobOut; status != http.StatusOK {
				t.Fatalf("bob's logout answered %d, want 200", status)
			}
			expectDownload(t, first, rest, true)
		})
	}
}
