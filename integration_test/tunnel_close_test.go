package integration_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// echoApp is the app behind Caddy in the tunnel tests: it answers an
// upgrade with 101 and echoes whatever the tunnel carries, and any other
// request as serveUpstream does, so that visitors log in and out through
// it. closed receives once per tunnel when its upstream connection ends.
type echoApp struct {
	closed chan struct{}
}

func (a *echoApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		serveUpstream(w, r)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer func() {
		conn.Close()
		a.closed <- struct{}{}
	}()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	brw.Flush()
	io.Copy(conn, brw)
}

// newTunnelSite is newSiteOn with echoApp as the upstream.
func newTunnelSite(t *testing.T, store, options string) (*site, *echoApp) {
	t.Helper()
	app := &echoApp{closed: make(chan struct{}, 16)}
	return newSiteBefore(t, store, options, app), app
}

// newSiteBefore is newSiteOn ("" for a bolt file of its own) in front of
// app, an upstream the test starts.
func newSiteBefore(t *testing.T, store, options string, app http.Handler) *site {
	t.Helper()
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: t.TempDir() + "/sessions.db",
		store: store, options: options, up: &upstream{srv}}
	if s.store == "" {
		s.store = "store bolt " + s.db
	}
	s.tester.Client.Jar = nil
	s.load()
	return s
}

// wsTunnel is a WebSocket's connection through Caddy, over HTTP/1.1.
type wsTunnel struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// openTunnel upgrades a connection to the site with the visitor's cookie.
func openTunnel(t *testing.T, v *visitor) *wsTunnel {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", v.site.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid=%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", v.sid)
	br := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", res.StatusCode)
	}
	ws := &wsTunnel{t: t, conn: conn, br: br}
	ws.echoes()
	return ws
}

// echoes fails unless the tunnel carries a message there and back.
func (ws *wsTunnel) echoes() {
	ws.t.Helper()
	ws.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := ws.conn.Write([]byte("ping")); err != nil {
		ws.t.Fatalf("the tunnel is closed: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(ws.br, got); err != nil || string(got) != "ping" {
		ws.t.Fatalf("the tunnel echoed %q (%v), want ping: it is closed", got, err)
	}
}

// closes fails unless Caddy closes the tunnel: the client reads its end
// (well before the deadline, which only bounds a failing test), and the
// upstream connection ends too.
func (ws *wsTunnel) closes(app *echoApp) {
	ws.t.Helper()
	ws.conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, ws.br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		ws.t.Fatal("the tunnel is still open after its session ended")
	}
	select {
	case <-app.closed:
	case <-time.After(10 * time.Second):
		ws.t.Fatal("the upstream side of the tunnel is still open after its session ended")
	}
}

// sessionEnd is a way this Caddy ends a session, with the handler options
// it needs, or one that keeps it (keeps).
type sessionEnd struct {
	name    string
	options string
	end     func(t *testing.T, s *site, alice *visitor)
	keeps   bool
}

// sessionEnds are the ways this Caddy ends a session, and two that keep
// it (keeps): what an open tunnel, a streamed response or a slow answer
// of the session must follow, before the end's response is out.
var sessionEnds = []sessionEnd{
	{"logout on another request", "", func(t *testing.T, s *site, alice *visitor) {
		expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	}, false},
	{"destroy-all from another device", "", func(t *testing.T, s *site, alice *visitor) {
		other := login(t, s, "alice")
		expectStatus(t, other.get("/reset", "X-Session-Destroy-All: true"), http.StatusOK)
	}, false},
	{"revoke from another device", "", func(t *testing.T, s *site, alice *visitor) {
		other := login(t, s, "alice")
		expectStatus(t, other.get("/devices", "X-Session-Revoke: "+session.HashID(alice.sid).Short()), http.StatusOK)
	}, false},
	{"admin revocation of the user", "", func(t *testing.T, s *site, alice *visitor) {
		var revoked struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &revoked)
		if revoked.Revoked != 1 {
			t.Fatalf("revoked %d sessions, want 1", revoked.Revoked)
		}
	}, false},
	{"admin revocation of the session", "", func(t *testing.T, s *site, alice *visitor) {
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(alice.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
	}, false},
	{"eviction by max_sessions_per_identity", "max_sessions_per_identity 1", func(t *testing.T, s *site, alice *visitor) {
		login(t, s, "alice")
	}, false},
	{"another user's login on the session", "", func(t *testing.T, s *site, alice *visitor) {
		expectStatus(t, alice.get("/login", "X-Session-Set-User: bob"), http.StatusOK)
	}, false},
	{"renewal of the same user", "", func(t *testing.T, s *site, alice *visitor) {
		was := alice.sid
		expectStatus(t, alice.get("/", "X-Session-Renew: true"), http.StatusOK)
		if alice.sid == was {
			t.Fatal("the renewal gave no new ID")
		}
	}, true},
	{"logout with tunnels keep", "tunnels keep", func(t *testing.T, s *site, alice *visitor) {
		expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	}, true},
}

// TestTunnelClosesWhenItsSessionEnds: a WebSocket opened with a session
// acts as that session's user for as long as it is open. When the session
// ends, by any of the ends this Caddy commits, the tunnel is closed on
// both sides before the end's response is out; a renewal of the same user
// keeps it (and it follows the session to its new ID); `tunnels keep`
// keeps it whatever happens. The check interval is an hour: only the
// prompt close can close these.
func TestTunnelClosesWhenItsSessionEnds(t *testing.T) {
	eachSessionEnd(t, func(t *testing.T, store, options string, tt sessionEnd) {
		s, app := newTunnelSite(t, store, options)
		alice := login(t, s, "alice")
		ws := openTunnel(t, alice)
		tt.end(t, s, alice)
		if !tt.keeps {
			ws.closes(app)
			return
		}
		ws.echoes()
		if tt.options == "tunnels keep" {
			return
		}
		// Still tracked at the session's new ID: its logout closes the
		// tunnel.
		expectStatus(t, alice.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		ws.closes(app)
	})
}

// eachSessionEnd runs run for every way of sessionEnds, on bolt and on
// Redis, with the handler options that way needs: an idle timeout of two
// hours and a tunnels check interval of one (so that only the prompt
// check an end committed by this Caddy sets off can act), unless the way
// keeps tunnels.
func eachSessionEnd(t *testing.T, run func(t *testing.T, store, options string, end sessionEnd)) {
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := ""
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			for _, tt := range sessionEnds {
				t.Run(tt.name, func(t *testing.T) {
					options := tt.options
					if options != "tunnels keep" {
						options += "\n\t\ttunnels 1h"
					}
					run(t, store, "idle_timeout 2h\n\t\t"+options, tt)
				})
			}
		})
	}
}

// TestTunnelClosesWhenItsSessionEndsElsewhere: an end this Caddy does not
// commit (another instance on the same store, the store's own expiry, or
// the session's deadline passing) is found by the periodic check.
func TestTunnelClosesWhenItsSessionEndsElsewhere(t *testing.T) {
	t.Run("absolute deadline", func(t *testing.T) {
		s, app := newTunnelSite(t, "", "absolute_timeout 1h\n\t\tidle_timeout 1h\n\t\ttouch_interval 1s\n\t\ttunnels 20ms")
		alice := login(t, s, "alice")
		ws := openTunnel(t, alice)
		ws.echoes()
		clock.Advance(2 * time.Hour)
		ws.closes(app)
	})
	t.Run("deleted in redis behind caddy's back", func(t *testing.T) {
		srv := redistest.Start(t)
		s, app := newTunnelSite(t, "store redis "+srv.URL(), "tunnels 20ms")
		alice := login(t, s, "alice")
		ws := openTunnel(t, alice)
		ws.echoes()
		if _, err := srv.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		ws.closes(app)
	})
}

// h2Tunnel is a WebSocket's HTTP/2 stream through Caddy, opened with an
// extended CONNECT (RFC 8441).
type h2Tunnel struct {
	t    *testing.T
	send *io.PipeWriter
	body io.ReadCloser
}

// openH2Tunnel opens an extended CONNECT stream to the site with the
// visitor's cookie, over client's connection.
func openH2Tunnel(t *testing.T, client *http.Client, v *visitor) *h2Tunnel {
	t.Helper()
	toApp, send := io.Pipe()
	t.Cleanup(func() { send.Close() })
	req, err := http.NewRequest(http.MethodConnect, v.site.url("/ws"), toApp)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Cookie", "sid="+v.sid)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("extended CONNECT: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
		t.Fatalf("got %s %d, want HTTP/2.0 200", res.Proto, res.StatusCode)
	}
	tun := &h2Tunnel{t: t, send: send, body: res.Body}
	tun.echoes()
	return tun
}

// within runs read, and fails if it has not returned after 10s (a bound
// for a failing test only: a tunnel that closes does so at once).
func within(t *testing.T, what string, read func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		read()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// echoes fails unless the stream carries a message there and back.
func (tun *h2Tunnel) echoes() {
	tun.t.Helper()
	var got []byte
	var err error
	within(tun.t, "the tunnel echoes nothing: it hangs", func() {
		if _, err = tun.send.Write([]byte("ping")); err != nil {
			return
		}
		got = make([]byte, 4)
		_, err = io.ReadFull(tun.body, got)
	})
	if err != nil || string(got) != "ping" {
		tun.t.Fatalf("the tunnel echoed %q (%v), want ping: it is closed", got, err)
	}
}

// closes fails unless Caddy ends the stream and the upstream connection.
func (tun *h2Tunnel) closes(app *echoApp) {
	tun.t.Helper()
	within(tun.t, "the tunnel's stream is still open after its session ended", func() {
		io.Copy(io.Discard, tun.body)
	})
	select {
	case <-app.closed:
	case <-time.After(10 * time.Second):
		tun.t.Fatal("the upstream side of the tunnel is still open after its session ended")
	}
}

// TestTunnelOverHTTP2ClosesWhenItsSessionEnds: a WebSocket over HTTP/2
// (extended CONNECT, answered 200) is a tunnel like a 101: a logout or a
// Destroy-All on another connection ends its stream and its upstream
// connection at once (the check interval is an hour), while another
// session's stream on the same connection goes on; a renewal of the same
// user keeps it, and the logout of the renewed session closes it. Caddy
// runs as its own process, as in TestWebSocketOverHTTP2AppliesNoCommands,
// for GODEBUG.
func TestTunnelOverHTTP2ClosesWhenItsSessionEnds(t *testing.T) {
	app := &echoApp{closed: make(chan struct{}, 16)}
	s, client := h2cTunnelSite(t, app, "idle_timeout 2h\n\t\ttunnels 1h")

	logout := func(t *testing.T, v *visitor) {
		expectStatus(t, v.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	}
	tests := []struct {
		name  string
		end   func(t *testing.T, alice *visitor)
		keeps bool
	}{
		{"logout on another connection", logout, false},
		{"destroy-all from another device", func(t *testing.T, alice *visitor) {
			other := login(t, s, "alice")
			expectStatus(t, other.get("/reset", "X-Session-Destroy-All: true"), http.StatusOK)
		}, false},
		{"renewal of the same user", func(t *testing.T, alice *visitor) {
			was := alice.sid
			expectStatus(t, alice.get("/", "X-Session-Renew: true"), http.StatusOK)
			if alice.sid == was {
				t.Fatal("the renewal gave no new ID")
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice, bob := login(t, s, "alice"), login(t, s, "bob")
			tun := openH2Tunnel(t, client, alice)
			other := openH2Tunnel(t, client, bob) // on the same connection
			tt.end(t, alice)
			if tt.keeps {
				tun.echoes()
				logout(t, alice)
			}
			tun.closes(app)
			other.echoes()
			logout(t, bob)
			other.closes(app)
		})
	}
}

// tunnelChecks installs testhook.TunnelChecked for the test: every check of
// an open tunnel is sent on the channel. If the test is behind, the oldest
// waiting check makes room: checks keep coming every interval, and the
// last, the one that closed the tunnel, may be the one a test waits for.
func tunnelChecks(t *testing.T) <-chan testhook.TunnelCheck {
	ch := make(chan testhook.TunnelCheck, 64)
	f := func(c testhook.TunnelCheck) {
		for {
			select {
			case ch <- c:
				return
			default:
			}
			select {
			case <-ch:
			default:
			}
		}
	}
	testhook.TunnelChecked.Store(&f)
	t.Cleanup(func() { testhook.TunnelChecked.Store(nil) })
	return ch
}

// checkedAt waits for a periodic check that read the session at now or
// later (so after whatever the test did before it took now), and returns
// it. The bound only ends a failing test: checks come every few ms. A
// check the store failed is none: its read and touch have one interval
// (a few ms here), which a machine busy with other tests may run out, and
// then it decided nothing; the next one will.
func checkedAt(t *testing.T, checks <-chan testhook.TunnelCheck, now time.Time) testhook.TunnelCheck {
	t.Helper()
	bound := time.After(10 * time.Second)
	for {
		select {
		case c := <-checks:
			if c.Periodic && !c.Now.Before(now) && (!c.Failed || c.Closed) {
				return c
			}
		case <-bound:
			t.Fatalf("no check of the tunnel read its session at %s or later", now)
		}
	}
}

// TestTunnelTouchesItsSession: an open tunnel is a use of its session. The
// session clock moves in steps shorter than idle_timeout, eight of them,
// over three times idle_timeout, each followed by a check of the tunnel at
// the new time: the tunnel stays open, and the session still opens for a
// normal request afterwards. If the handshake matched no_touch, the
// tunnel is no use: the first check past idle_timeout closes it and the
// session is gone.
func TestTunnelTouchesItsSession(t *testing.T) {
	const idle, step, steps = time.Hour, 25 * time.Minute, 8
	for _, backend := range []string{"bolt", "redis"} {
		for _, noTouch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, no_touch %v", backend, noTouch), func(t *testing.T) {
				store := ""
				if backend == "redis" {
					store = "store redis " + redistest.Start(t).URL()
				}
				options := "idle_timeout 1h\n\t\ttouch_interval 1m\n\t\ttunnels 5ms"
				if noTouch {
					options += "\n\t\tno_touch /ws"
				}
				checks := tunnelChecks(t)
				s, app := newTunnelSite(t, store, options)
				alice := login(t, s, "alice")
				ws := openTunnel(t, alice)
				for i := 1; i <= steps; i++ {
					// The time of the step, read before it: a check
					// may read the clock, and close, as soon as it
					// moved, before this goroutine reads it.
					at := clock.Now().Add(step)
					clock.Advance(step)
					c := checkedAt(t, checks, at)
					past := time.Duration(i) * step
					if c.Closed != (noTouch && past > idle) {
						t.Fatalf("after %s, closed: %v", past, c.Closed)
					}
					if c.Closed {
						ws.closes(app)
						if got := sessionOf(t, s, "sid="+alice.sid); got["user"] != "" {
							t.Fatalf("the session opened after idle_timeout with no use but the tunnel: %v", got)
						}
						return
					}
				}
				if noTouch {
					t.Fatal("the tunnel of a no_touch handshake kept its session alive")
				}
				ws.echoes()
				if got := sessionOf(t, s, "sid="+alice.sid); got["user"] != "alice" {
					t.Fatalf("after %s of an open tunnel the session is %v, want alice's", steps*step, got)
				}
			})
		}
	}
}

// TestTunnelClosesWhenAnotherHandlerOfItsStoreEndsItsSession: during a
// move to another store, a tunnel opened through the handler with
// fallback_store (its session copied into the new store, still in the
// old) is closed at once when a handler of the new store without
// fallback_store (another site of the config) ends the session. The
// check that the end ran read the session through the fallback_store
// before the end reached the old store, copied it back into the new store
// and kept the tunnel open; the session, copied back, opened meanwhile.
func TestTunnelClosesWhenAnotherHandlerOfItsStoreEndsItsSession(t *testing.T) {
	cases := []struct {
		name     string
		commands []string
	}{
		{"logout", []string{"X-Session-Destroy: true"}},
		{"destroy-all", []string{"X-Session-Destroy-All: true"}},
		{"another user's login", []string{"X-Session-Set-User: bob"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldDB, newDB := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
			app := &echoApp{closed: make(chan struct{}, 16)}
			srv := httptest.NewServer(app)
			t.Cleanup(srv.Close)
			up := &upstream{srv}
			plain := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up}
			plain.tester.Client.Jar = nil
			moving := &site{t: t, tester: plain.tester, port: freePort(t), up: up}
			siteConfig := func(s *site, stores string) string {
				return fmt.Sprintf("http://127.0.0.1:%d {\n\tsession {\n\t\t%s\n\t\trealm app\n\t\tidle_timeout 2h\n\t\ttunnels 1h\n\t}\n\treverse_proxy %s\n}\n", s.port, stores, up.addr())
			}
			global := fmt.Sprintf("{\n\tadmin localhost:%d\n\tskip_install_trust\n}\n", adminPort)
			moving.reload(global + siteConfig(moving, "store bolt "+oldDB))
			alice := login(t, moving, "alice")
			moving.reload(global + siteConfig(plain, "store bolt "+newDB) +
				siteConfig(moving, "store bolt "+newDB+"\n\t\tfallback_store bolt "+oldDB))
			ws := openTunnel(t, alice) // copies the session into the new store

			expectStatus(t, (&visitor{site: plain, sid: alice.sid}).get("/end", tc.commands...), http.StatusOK)
			ws.closes(app)
			if got := sessionOf(t, moving, "sid="+alice.sid); got["user"] != "" {
				t.Fatalf("the ended session opens: %v", got)
			}
		})
	}
}
