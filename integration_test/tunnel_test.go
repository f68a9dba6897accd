package integration_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"golang.org/x/net/http2"
)

// TestWebSocketOverHTTP2AppliesNoCommands: over HTTP/2, a WebSocket opens
// with an extended CONNECT (RFC 8441), which Caddy proxies to the app as an
// HTTP/1.1 upgrade and answers with 200 where HTTP/1.1 answers 101. The
// commands on the app's 101 are treated as over HTTP/1.1: neither applied
// nor sent, no cookie, and the tunnel works.
//
// Go's HTTP/2 server offers extended CONNECT only when GODEBUG holds
// http2xconnect=1 as the process starts (Go 1.26 still has it off by
// default, golang.org/issue/71128), so this test runs Caddy as its own
// process, over cleartext HTTP/2 (h2c).
func TestWebSocketOverHTTP2AppliesNoCommands(t *testing.T) {
	s, client := h2cTunnelSite(t, new(hostileApp), "")

	upgrade := strconv.Quote("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"X-Session-Set-Role: admin\r\nX-Session-Set-User: mallory\r\nX-Session-Destroy: true\r\n\r\nhello from the tunnel")
	for _, anonymous := range []bool{false, true} {
		t.Run(fmt.Sprintf("anonymous %v", anonymous), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			toApp, send := io.Pipe()
			defer send.Close()
			req, err := http.NewRequestWithContext(ctx, http.MethodConnect, s.url("/ws"), toApp)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(":protocol", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Test-Raw", upgrade)
			var alice *visitor
			if !anonymous {
				alice = login(t, s, "alice")
				req.Header.Set("Cookie", "sid="+alice.sid)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("extended CONNECT: %v", err)
			}
			defer res.Body.Close()
			if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
				t.Fatalf("got %s %d, want HTTP/2.0 200", res.Proto, res.StatusCode)
			}
			assertNoneLeaked(t, res)
			if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("the tunnel's 200 set cookies %q", c)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || string(got) != "hello from the tunnel" {
				t.Fatalf("the tunnel carried %q (%v)", got, err)
			}
			if !anonymous {
				want := map[string]string{"user": "alice", "cart": "apple"}
				if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
					t.Fatalf("session afterwards = %v, want %v", got, want)
				}
			}
		})
	}

	// A refused CONNECT opens no tunnel: its answer is a final response
	// like any other, and its commands apply.
	t.Run("refused", func(t *testing.T) {
		alice := login(t, s, "alice")
		req, err := http.NewRequest(http.MethodConnect, s.url("/ws"), http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(":protocol", "websocket")
		req.Header.Set("Cookie", "sid="+alice.sid)
		req.Header.Set("Test-Raw", strconv.Quote("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nX-Session-Set-Flash: denied\r\n\r\n"))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("extended CONNECT: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", res.StatusCode)
		}
		assertNoneLeaked(t, res)
		want := map[string]string{"user": "alice", "cart": "apple", "flash": "denied"}
		if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
			t.Fatalf("session afterwards = %v, want %v", got, want)
		}
	})
}

// h2cTunnelSite starts Caddy as its own process, with GODEBUG's
// http2xconnect=1 (Go's HTTP/2 server offers extended CONNECT only when
// the process starts with it) and cleartext HTTP/2, in front of app, with
// the session's options (beside its bolt store). It returns the site and
// an HTTP/2 client that speaks h2c with prior knowledge: net/http's client
// refuses the :protocol pseudo-header, x/net's HTTP/2 transport sends it.
func h2cTunnelSite(t *testing.T, app http.Handler, options string) (*site, *http.Client) {
	t.Helper()
	godebug := os.Getenv("GODEBUG")
	if godebug != "" {
		godebug += ","
	}
	t.Setenv("GODEBUG", godebug+"http2xconnect=1") // inherited by the Caddy process

	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: &upstream{srv}}
	s.tester.Client.Jar = nil
	admin := freePort(t)
	startCaddy(t, fmt.Sprintf(`{
	admin localhost:%d
	servers {
		protocols h1 h2c
	}
}
http://127.0.0.1:%d {
	session {
		store bolt %s
		%s
	}
	reverse_proxy %s
}
`, admin, s.port, filepath.Join(t.TempDir(), "sessions.db"), options, s.up.addr()), admin)
	waitPort(t, s.port)

	transport := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)
	return s, &http.Client{Transport: transport}
}
