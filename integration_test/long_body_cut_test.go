package integration_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
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
}

func (a *slowDownloadApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/download" {
		serveUpstream(w, r)
		return
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
		req, err := http.NewRequest(http.MethodGet, s.url("/download"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Cookie", "sid="+alice.sid)
		client := &http.Client{Transport: &http.Transport{}}
		t.Cleanup(client.CloseIdleConnections)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("the download's status is %d, want 200", res.StatusCode)
		}
		first := make([]byte, downloadPart/2)
		within(t, "the first half of the download never came", func() {
			_, err = io.ReadFull(res.Body, first)
		})
		if err != nil {
			t.Fatalf("reading the first half: %v", err)
		}
		<-app.sent
		end.end(t, s, alice)
		clock.Advance(2 * time.Second)
		close(app.more)
		var rest []byte
		within(t, "the download hangs after its session ended", func() {
			rest, _ = io.ReadAll(res.Body)
		})
		got := len(first) + len(rest)
		if end.keeps {
			if got != 2*downloadPart || !bytes.Contains(rest, []byte("b")) {
				t.Fatalf("the download gave %d bytes of %d: a session that stands gets the whole body", got, 2*downloadPart)
			}
			return
		}
		if bytes.Contains(rest, []byte("b")) {
			t.Fatalf("the download went on after its session ended: %d bytes of %d, the app's second half among them", got, 2*downloadPart)
		}
	})
}
