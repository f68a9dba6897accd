package integration_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// h2cApp is an app server that takes an `Upgrade: h2c` without asking
// for HTTP2-Settings in Connection (Caddy's reverse_proxy sends
// `Connection: Upgrade` alone), as some do: it answers 101 and reads the
// client's next request from the tunnel, where no proxy looks at it. It
// stands for the HTTP/2 frames an h2c smuggler sends; it reads an HTTP/1.1
// request instead, which is the same bytes unseen by Caddy. It reports the
// X-Session-User of what it read on tunneled; anything else is served as
// serveUpstream does, so that visitors log in through it.
type h2cApp struct {
	tunneled chan string
}

func (a *h2cApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "h2c") {
		serveUpstream(w, r)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	brw.Flush()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	inner, err := http.ReadRequest(brw.Reader)
	if err != nil {
		a.tunneled <- "(none: " + err.Error() + ")"
		return
	}
	a.tunneled <- inner.Header.Get("X-Session-User")
	fmt.Fprint(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
}

// TestNoH2CUpgradeToTheApp: an `Upgrade: h2c` from the client is taken
// off the request, so that the app never switches to a tunnel the client
// would talk to unseen: what it sent there (X-Session-User: admin, the
// smuggled HTTP/2 requests of "h2c smuggling") would reach the app past
// the session handler, which removes the namespace only from the request
// it sees. A browser never asks a proxy for h2c; reverse_proxy would
// forward it like any upgrade.
func TestNoH2CUpgradeToTheApp(t *testing.T) {
	for _, upgrade := range []string{"h2c", "H2C", "websocket, h2c"} {
		t.Run(upgrade, func(t *testing.T) {
			app := &h2cApp{tunneled: make(chan string, 1)}
			s := newSiteBefore(t, "", "", app)
			alice := login(t, s, "alice")

			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: sid=%s\r\n"+
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: %s\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
				s.port, alice.sid, upgrade)
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode == http.StatusSwitchingProtocols {
				fmt.Fprintf(conn, "GET /admin HTTP/1.1\r\nHost: app\r\nX-Session-User: admin\r\n\r\n")
				t.Fatalf("the app switched to h2c, and read from the tunnel a request with X-Session-User %q", <-app.tunneled)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("the request answered %d, want 200 from the app as a plain request", res.StatusCode)
			}
		})
	}
}
