package integration_test

// A response that streams, from a real app server, across the end of its
// session. The README promises that a stream of a request that carried a
// live session is cut once that session ends: no byte the app writes for
// the user after the end reaches the device that was logged out. The
// stream tests elsewhere run a Go upstream behind reverse_proxy's HTTP
// transport, which closes the upstream connection when the request's
// context ends; Caddy's FastCGI transport (php_fastcgi) never looks at the
// context once it has dialled, so there the end must stop the copy by
// itself. Each server here streams as its users stream: PHP with flush()
// (an event stream), gunicorn and waitress with a WSGI iterator, Express
// with res.write.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
)

// apps2StreamScript is an event stream in PHP, as users write one: it
// turns PHP's output buffering off, greets the session's user, then sends
// one event per line it reads from the named pipe of its query, each
// flushed at once, until the pipe is closed. The pipe is the test's
// gate: PHP waits on it without polling, and writes only what the test
// writes into it, when it does.
const apps2StreamScript = `<?php
header('Content-Type: text/event-stream');
header('Cache-Control: no-store');
while (ob_get_level() > 0) {
	ob_end_flush();
}
$user = $_SERVER['HTTP_X_SESSION_USER'] ?? 'nobody';
echo "data: hello $user\n\n";
flush();
$pipe = fopen($_GET['pipe'], 'r');
while (($line = fgets($pipe)) !== false) {
	echo 'data: ' . trim($line) . " for $user\n\n";
	flush();
}
`

// apps2Server is an app server behind a Caddy of the test's, with the
// session handler, streaming as its users do.
type apps2Server struct {
	name string
	// serve is the site's directives that reach the app.
	serve string
	// command is the path that answers with the session commands given
	// as h=Name:value (the app's /emit, or the PHP report script).
	command string
	// stream opens a stream for the visitor and reads its first piece,
	// which the app wrote for its user; next has the app write one more
	// piece holding secret and end the stream.
	stream func(t *testing.T, s *site, v *visitor) (st *apps2Stream, next func(secret string))
}

// apps2Stream is a streamed response as its client reads it.
type apps2Stream struct {
	t  *testing.T
	br *bufio.Reader
}

// apps2Servers starts each app server (one of each kind, for the whole
// test) and returns the ways to serve and stream from them.
func apps2Servers(t *testing.T) []apps2Server {
	t.Helper()
	var out []apps2Server
	for _, kind := range appServerKinds() {
		app := startAppServer(t, kind)
		out = append(out, apps2Server{
			name:    kind.name,
			serve:   "reverse_proxy " + app.addr,
			command: "/emit",
			stream: func(t *testing.T, s *site, v *visitor) (*apps2Stream, func(string)) {
				gate := strconv.FormatInt(time.Now().UnixNano(), 36)
				st := openApps2Stream(t, s, v, appPath("/stream", "gate", gate))
				st.expect("first\n")
				released := false
				release := func() {
					if released {
						return
					}
					released = true
					res, err := http.Get("http://" + app.addr + appPath("/release", "gate", gate))
					if err != nil {
						t.Errorf("releasing the app's stream: %v", err)
						return
					}
					res.Body.Close()
				}
				t.Cleanup(release) // let the app's worker go
				// The apps end their stream with a fixed "last\n": the
				// session's data is the stream itself.
				return st, func(string) { release() }
			},
		})
	}
	php := startPHPApp(t)
	php.write("index.php", phpReportScript)
	php.write("stream.php", apps2StreamScript)
	out = append(out, apps2Server{
		name:    "php-fpm",
		serve:   fmt.Sprintf("root * %s\n\tphp_fastcgi %s {\n\t\ttry_files {path}.php index.php\n\t}", php.root, php.fpm.addr),
		command: "/report",
		stream:  pipedStream,
	})
	return out
}

// newApps2Site loads a site with the session handler, the store line
// ("": a bolt file of its own) and these options, in front of the server.
func newApps2Site(t *testing.T, srv apps2Server, store, options string) *site {
	t.Helper()
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: filepath.Join(t.TempDir(), "sessions.db")}
	if store == "" {
		store = "store bolt " + s.db
	}
	s.tester.Client.Jar = nil
	s.tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://127.0.0.1:%d {
	session {
		%s
		%s
	}
	%s
}
`, adminPort, s.port, freePort(t), s.port, store, options, srv.serve))
	return s
}

// openApps2Stream opens path for the visitor, on a client of its own (the
// tester's gives up after 5s), and returns the stream once its header
// has come.
func openApps2Stream(t *testing.T, s *site, v *visitor, path string) *apps2Stream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cookie", "sid="+v.sid)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("opening the stream: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the stream's status is %d, want 200", res.StatusCode)
	}
	assertNoneLeaked(t, res)
	expectNoCookie(t, res, "a stream that changes nothing")
	return &apps2Stream{t: t, br: bufio.NewReader(res.Body)}
}

// expect fails unless the stream's next line is want.
func (st *apps2Stream) expect(want string) {
	st.t.Helper()
	var line string
	var err error
	within(st.t, "the stream hangs: nothing came", func() { line, err = st.br.ReadString('\n') })
	if line != want || err != nil {
		st.t.Fatalf("the stream gave %q (%v), want %q", line, err, want)
	}
}

// rest reads the stream to its end: what came, and whether it ended
// unfinished (cut) rather than as the app ended it.
func (st *apps2Stream) rest() (string, bool) {
	st.t.Helper()
	var b []byte
	var err error
	within(st.t, "the stream is still open after the app ended it", func() { b, err = io.ReadAll(st.br) })
	return string(b), err != nil && !errors.Is(err, io.EOF)
}

// apps2End is a way the session of an open stream ends, or goes on.
type apps2End struct {
	name string
	// end ends (or renews) alice's session, whose ID v holds, through
	// the site and its app (command is the app's command path).
	end func(t *testing.T, s *site, command string, v *visitor)
	// keeps: the session goes on under the same user, and so does the
	// stream.
	keeps bool
}

// apps2Login logs a new visitor in as user through the app.
func apps2Login(t *testing.T, s *site, command, user string) *visitor {
	t.Helper()
	v := s.visitor()
	expectStatus(t, v.get(appPath(command, "h", "X-Session-Set-User:"+user)), http.StatusOK)
	if v.sid == "" {
		t.Fatalf("the login as %s through the app issued no session", user)
	}
	return v
}

// apps2Ends are the ends of TestAppServerStreamCutWhenItsSessionEnds,
// each committed by this Caddy while the stream is open.
var apps2Ends = []apps2End{
	{"logout in another tab", func(t *testing.T, s *site, command string, v *visitor) {
		tab := &visitor{site: s, sid: v.sid}
		expectStatus(t, tab.get(appPath(command, "h", "X-Session-Destroy:true")), http.StatusOK)
	}, false},
	{"logout everywhere from another device", func(t *testing.T, s *site, command string, v *visitor) {
		other := apps2Login(t, s, command, "alice")
		expectStatus(t, other.get(appPath(command, "h", "X-Session-Destroy-All:true")), http.StatusOK)
	}, false},
	{"admin revocation of the user", func(t *testing.T, s *site, command string, v *visitor) {
		var revoked struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &revoked)
		if revoked.Revoked == 0 {
			t.Fatal("the admin API revoked no session of alice")
		}
	}, false},
	{"another user's login in another tab", func(t *testing.T, s *site, command string, v *visitor) {
		tab := &visitor{site: s, sid: v.sid}
		expectStatus(t, tab.get(appPath(command, "h", "X-Session-Set-User:bob")), http.StatusOK)
	}, false},
	{"renewal of the same user in another tab", func(t *testing.T, s *site, command string, v *visitor) {
		tab := &visitor{site: s, sid: v.sid}
		expectStatus(t, tab.get(appPath(command, "h", "X-Session-Renew:true")), http.StatusOK)
		if tab.sid == v.sid || tab.sid == "" {
			t.Fatal("the renewal gave no new ID")
		}
	}, true},
}

// TestAppServerStreamCutWhenItsSessionEnds: alice's stream from each app
// server is open when her session ends (the tunnels interval is an hour:
// only the end this Caddy commits can cut it); then the app writes more
// of it. Nothing of what it writes reaches the client, and the response
// ends unfinished. A renewal of the same user keeps the stream, and what
// the app writes after it arrives: the rows that cut show the cut, not a
// stream that never delivers.
func TestAppServerStreamCutWhenItsSessionEnds(t *testing.T) {
	for _, srv := range apps2Servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, row := range apps2Ends {
				t.Run(row.name, func(t *testing.T) {
					s := newApps2Site(t, srv, "", "idle_timeout 2h\n\t\ttunnels 1h")
					alice := apps2Login(t, s, srv.command, "alice")
					st, next := srv.stream(t, s, alice)
					row.end(t, s, srv.command, alice)
					next("secret")
					rest, cut := st.rest()
					if row.keeps {
						if cut || rest == "" {
							t.Fatalf("after a renewal of the same user the stream gave %q (cut: %v), want the app's next piece", rest, cut)
						}
						return
					}
					if rest != "" {
						t.Fatalf("the app's stream delivered %q to the device after its session ended", rest)
					}
					if !cut {
						t.Fatal("the stream ended as if complete after its session ended, want it cut")
					}
				})
			}
		})
	}
}

// TestAppServerStreamCutWhenItsSessionEndsElsewhere: an end this Caddy
// does not commit (the session's absolute deadline passing on the
// injected clock; the session deleted in Redis behind Caddy's back, as
// another instance's logout would) is found by the stream's periodic
// check; once a check has found it, nothing the app writes for the user
// reaches the client, and the response ends unfinished.
func TestAppServerStreamCutWhenItsSessionEndsElsewhere(t *testing.T) {
	srv := redistest.Start(t)
	rows := []struct {
		name, store, options string
		end                  func(t *testing.T)
	}{
		{"absolute deadline", "", "absolute_timeout 1h\n\t\tidle_timeout 1h\n\t\ttouch_interval 1s\n\t\ttunnels 20ms",
			func(t *testing.T) { clock.Advance(2 * time.Hour) }},
		{"deleted in redis behind caddy's back", "store redis " + srv.URL(), "tunnels 20ms",
			func(t *testing.T) {
				if _, err := srv.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, app := range apps2Servers(t) {
		t.Run(app.name, func(t *testing.T) {
			for _, row := range rows {
				t.Run(row.name, func(t *testing.T) {
					s := newApps2Site(t, app, row.store, row.options)
					alice := apps2Login(t, s, app.command, "alice")
					st, next := app.stream(t, s, alice)
					checks := tunnelChecks(t)
					row.end(t)
					apps2Closed(t, checks)
					next("secret")
					if rest, cut := st.rest(); rest != "" || !cut {
						t.Fatalf("after its session ended elsewhere the stream gave %q (cut: %v), want nothing and a cut", rest, cut)
					}
				})
			}
		})
	}
}

// apps2Closed waits until a check of the stream closes it. The bound only
// ends a failing test: checks come every 20ms.
func apps2Closed(t *testing.T, checks <-chan testhook.TunnelCheck) {
	t.Helper()
	bound := time.After(10 * time.Second)
	for {
		select {
		case c := <-checks:
			if c.Closed {
				return
			}
		case <-bound:
			t.Fatal("no check of the stream found that its session had ended")
		}
	}
}

// pipedStream opens the app's /stream for v, which greets alice and then
// sends one event holding the secret the test writes into its pipe; the
// function it returns writes that secret.
func pipedStream(t *testing.T, s *site, v *visitor) (*apps2Stream, func(string)) {
	pipe := filepath.Join(t.TempDir(), "events")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openApps2Stream(t, s, v, appPath("/stream", "pipe", pipe))
	st.expect("data: hello alice\n")
	st.expect("\n")
	var w *os.File
	t.Cleanup(func() {
		if w == nil { // PHP waits to open the pipe: open it and close it, and PHP ends
			if f, err := os.OpenFile(pipe, os.O_WRONLY, 0); err == nil {
				w = f
			}
		}
		if w != nil {
			w.Close()
		}
	})
	return st, func(secret string) {
		var err error
		// PHP opened the pipe for reading after its first flush:
		// this open does not wait for long.
		if w, err = os.OpenFile(pipe, os.O_WRONLY, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, secret+"\n"); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
}
