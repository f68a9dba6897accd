package integration_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/testhook"
)

// longFileSize is the size of the file the long-download tests serve:
// far more than the loopback socket's buffers hold, so that most of it is
// still on the server's side when the client stops reading.
const longFileSize = 48 << 20

// longFileDir makes a directory with files/big.bin, longFileSize bytes of
// one byte, for file_server to serve.
func longFileDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "files", "big.bin"), bytes.Repeat([]byte("f"), longFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLongFileCutWhenItsSessionEnds: a large file that
// file_server sends behind the session handler, still being sent a
// second or more after its request loaded the session, is a long body
// like a proxied download's (README: "A body of known length that is
// still being written a second or more after its request loaded the
// session ... is watched the same way"), and is cut when its session
// ends. file_server hands its whole file to the writer's ReadFrom in one
// call (sendfile over HTTP/1.1, io.Copy past the session's Write over
// HTTP/2), which judged the session once, at its first byte, and sent
// the rest of the user's file to the device that was logged out. A
// renewal of the same user and `tunnels keep` get the whole file; so
// does a file served through `encode` (an incompressible type, which
// encode passes to the same ReadFrom).
func TestLongFileCutWhenItsSessionEnds(t *testing.T) {
	dir := longFileDir(t)
	for _, shape := range []struct{ name, defs string }{
		{"file_server", "handle /files/* {\n\t\troot * " + dir + "\n\t\tfile_server\n\t}"},
		{"encode in front of file_server", "encode gzip\n\thandle /files/* {\n\t\troot * " + dir + "\n\t\tfile_server\n\t}"},
	} {
		t.Run(shape.name, func(t *testing.T) {
			eachSessionEnd(t, func(t *testing.T, store, options string, end sessionEnd) {
				s := newSiteWith(t, store, shape.defs, options)
				alice := login(t, s, "alice")
				res := openDownload(t, alice, "/files/big.bin")
				if res.StatusCode != http.StatusOK || res.ContentLength != longFileSize {
					t.Fatalf("the download's status is %d with length %d, want 200 with %d: file_server did not serve the file", res.StatusCode, res.ContentLength, longFileSize)
				}
				got := readFileAcross(t, res, func() { end.end(t, s, alice) })
				expectFile(t, got, end.keeps)
			})
		})
	}
}

// TestLongFileCutOverHTTP2: over HTTP/2, whose writer has no
// ReadFrom of its own, the copy file_server hands to ReadFrom went past
// the session's Write straight to the stream, never judged: a large file
// is cut there too when its session ends, and a renewal of the same user
// gets the whole file.
func TestLongFileCutOverHTTP2(t *testing.T) {
	dir := longFileDir(t)
	s := newHTTPSSiteFor(t, new(hostileApp), "", "handle /files/* {\n\t\troot * "+dir+"\n\t\tfile_server\n\t}", "idle_timeout 2h\n\t\ttunnels 1h")
	client := h2Client(t)
	login := func(t *testing.T) string {
		r := httpsDo(t, client, http.MethodGet, s.httpsURL("/login"), nil, "Test-Header", "X-Session-Set-User: alice")
		expectStatus(t, r, http.StatusOK)
		ck := r.sessionCookie()
		if ck == nil {
			t.Fatal("the login issued no session")
		}
		return ck.Value
	}
	for _, tt := range []struct {
		name    string
		command string
		keeps   bool
	}{
		{"logout on another request", "X-Session-Destroy: true", false},
		{"another user's login on the session", "X-Session-Set-User: bob", false},
		{"renewal of the same user", "X-Session-Renew: true", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sid := login(t)
			req, err := http.NewRequest(http.MethodGet, s.httpsURL("/files/big.bin"), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Cookie", "sid="+sid)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
				t.Fatalf("got %s %d, want HTTP/2.0 200", res.Proto, res.StatusCode)
			}
			got := readFileAcross(t, res, func() {
				expectStatus(t, httpsDo(t, client, http.MethodGet, s.httpsURL("/act"), []string{"sid=" + sid}, "Test-Header", tt.command), http.StatusOK)
			})
			expectFile(t, got, tt.keeps)
		})
	}
}

// TestLongFileReadsItsSessionOnce: copying a file in parts costs
// its session no reads but where a body's writes would: a file sent
// within its second reads the session no more (no check of it at all),
// and a long one whose session stands is judged once when it passes the
// second, not at every part after that, and arrives whole.
func TestLongFileReadsItsSessionOnce(t *testing.T) {
	dir := longFileDir(t)
	if err := os.WriteFile(filepath.Join(dir, "files", "small.bin"), bytes.Repeat([]byte("s"), 3<<20+17), 0o644); err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int64
	count := func(testhook.TunnelCheck) { checks.Add(1) }
	testhook.TunnelChecked.Store(&count)
	t.Cleanup(func() { testhook.TunnelChecked.Store(nil) })
	defs := "handle /files/* {\n\t\troot * " + dir + "\n\t\tfile_server\n\t}"
	onEachStoreWith(t, defs, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "idle_timeout 2h\n\t\ttunnels 1h")
		for _, tt := range []struct {
			name      string
			path      string
			size      int64
			slow      bool
			minChecks int64
			maxChecks int64
		}{
			{"a file sent within its second", "/files/small.bin", 3<<20 + 17, false, 0, 0},
			{"a long file of a session that stands", "/files/big.bin", longFileSize, true, 1, 2},
		} {
			t.Run(tt.name, func(t *testing.T) {
				alice := login(t, s, "alice")
				checks.Store(0)
				res := openDownload(t, alice, tt.path)
				var err error
				var got int64
				within(t, "the download hangs", func() {
					if tt.slow {
						var first int64
						first, err = io.CopyN(io.Discard, res.Body, 1<<20)
						got += first
						if err != nil {
							return
						}
						clock.Advance(2 * time.Second)
					}
					var rest int64
					rest, err = io.Copy(io.Discard, res.Body)
					got += rest
				})
				if err != nil || got != tt.size {
					t.Fatalf("the download gave %d bytes of %d (%v): a session that stands gets the whole file", got, tt.size, err)
				}
				if n := checks.Load(); n < tt.minChecks || n > tt.maxChecks {
					t.Fatalf("the download checked its session %d times, want %d to %d: a body is judged once it passes its second, not per part, and one within its second not at all", n, tt.minChecks, tt.maxChecks)
				}
			})
		}
	})
}

// readFileAcross reads the first megabyte of a download, runs meanwhile,
// moves the clock past the second after which a long body is judged,
// and reads the rest: it returns the bytes the client got.
func readFileAcross(t *testing.T, res *http.Response, meanwhile func()) int64 {
	t.Helper()
	first := make([]byte, 1<<20)
	var err error
	within(t, "the first megabyte of the download never came", func() {
		_, err = io.ReadFull(res.Body, first)
	})
	if err != nil {
		t.Fatalf("reading the first megabyte: %v", err)
	}
	meanwhile()
	clock.Advance(2 * time.Second)
	var rest int64
	within(t, "the download hangs after its session ended", func() {
		rest, _ = io.Copy(io.Discard, res.Body)
	})
	return int64(len(first)) + rest
}

// expectFile fails unless a download of the long file that got got bytes
// was whole, if its session stands (keeps), or else cut.
func expectFile(t *testing.T, got int64, keeps bool) {
	t.Helper()
	if keeps && got != longFileSize {
		t.Fatalf("the download gave %d bytes of %d: a session that stands gets the whole file", got, longFileSize)
	}
	if !keeps && got == longFileSize {
		t.Fatalf("the whole file (%d bytes) reached the device after its session ended: its copy was never judged past its first byte", got)
	}
}
