package integration_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestBindIPRefusesEarlyData: over HTTP/3, Caddy accepts requests in 0-RTT
// early data by default, before the handshake has proven that the client
// owns its source address; a client resuming a TLS session of its own can
// send one from any address it spoofs. `bind ip` must therefore not take
// such a request's address as the bound network's: the session is not
// served, and the request is answered 425 Too Early (as Caddy's remote_ip
// matcher does), which tells the client to send it again once the
// handshake completes. A session bound by nothing that early data cannot
// prove is served as usual, and a bound one is served once the handshake
// is done.
func TestBindIPRefusesEarlyData(t *testing.T) {
	const admin = `handle /admin/* {
		session {
			store bolt <db>
			bind ip
		}
	}`
	tests := []struct {
		name    string
		options string
		nested  bool // bind ip in a handler under /admin/, in the site's handler of the same store
		refused bool
	}{
		{name: "bind ip", options: "bind ip", refused: true},
		{name: "bind user_agent ip 24 56", options: "bind user_agent ip 24 56", refused: true},
		{name: "bind user_agent", options: "bind user_agent"},
		{name: "no bind", options: ""},
		{name: "bind ip nested under /admin/", nested: true, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s *site
			path := "/"
			if tc.nested {
				s = newHTTPSSiteWith(t, "", admin, "")
				path = "/admin/"
			} else {
				s = newHTTPSSite(t, tc.options)
			}
			cache := newTicketCache()
			first := h3Client(t, cache)
			login := httpsDo(t, first, http.MethodGet, s.httpsURL(path+"login"), nil, "Test-Header", "X-Session-Set-User: alice")
			ck := login.sessionCookie()
			if ck == nil {
				t.Fatalf("login set no cookie: %d %s", login.StatusCode, login.body)
			}
			cache.await(t) // the ticket that lets the next connection send 0-RTT
			first.Transport.(*http3.Transport).Close()

			// A new connection resumes the TLS session and sends the
			// request in 0-RTT, before the handshake completes.
			holder := holdHandshake(t, s.port)
			early := h3Client(t, cache)
			url := fmt.Sprintf("https://127.0.0.1:%d%s", holder.port(), path)
			r := httpsDo(t, early, http3.MethodGet0RTT, url, []string{"sid=" + ck.Value})
			if tc.refused {
				if r.StatusCode != http.StatusTooEarly || r.seen.Headers != nil {
					t.Fatalf("a bound session in early data: got %d, upstream saw %v; want 425 and no request upstream", r.StatusCode, r.seen.Headers)
				}
			} else {
				if r.seen.Headers.Get("Early-Data") != "1" {
					t.Fatalf("the request did not arrive in early data: %d %s", r.StatusCode, r.body)
				}
				expectSession(t, r, map[string]string{"X-Session-User": "alice"})
			}
			// After the handshake the same connection is served.
			holder.release()
			r = httpsDo(t, early, http.MethodGet, url, []string{"sid=" + ck.Value})
			if r.seen.Headers.Get("Early-Data") != "" {
				t.Fatalf("the request after the handshake still came in early data")
			}
			expectSession(t, r, map[string]string{"X-Session-User": "alice"})
		})
	}
}

// ticketCache is a TLS client session cache that tells when the server's
// session ticket, which 0-RTT needs, has arrived: the server sends it
// after the handshake, possibly after the first response.
type ticketCache struct {
	tls.ClientSessionCache
	put  chan struct{}
	once sync.Once
}

func newTicketCache() *ticketCache {
	return &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(8), put: make(chan struct{})}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		c.once.Do(func() { close(c.put) })
	}
}

func (c *ticketCache) await(t *testing.T) {
	t.Helper()
	select {
	case <-c.put:
	case <-time.After(10 * time.Second):
		t.Fatal("the server sent no session ticket")
	}
}

// handshakeHolder relays the UDP datagrams of one QUIC client to a
// server and, until release, keeps back those of the client's that are
// neither Initial nor 0-RTT packets: its Handshake packets, which carry
// its Finished, and what it sends under 1-RTT keys. The server's
// handshake then stays incomplete, so a request that the client sent in
// 0-RTT reaches Caddy as early data for certain (on loopback the
// handshake would otherwise often complete first); the server still
// answers it, under its own 1-RTT keys.
type handshakeHolder struct {
	front *net.UDPConn // where the client sends
	back  *net.UDPConn // connected to the server

	mu      sync.Mutex
	client  *net.UDPAddr
	holding bool
	held    [][]byte
}

func holdHandshake(t *testing.T, server int) *handshakeHolder {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: server})
	if err != nil {
		t.Fatal(err)
	}
	h := &handshakeHolder{front: front, back: back, holding: true}
	t.Cleanup(func() { front.Close(); back.Close() })
	go h.toServer()
	go h.toClient()
	return h
}

func (h *handshakeHolder) port() int { return h.front.LocalAddr().(*net.UDPAddr).Port }

func (h *handshakeHolder) toServer() {
	buf := make([]byte, 65536)
	for {
		n, from, err := h.front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b := append([]byte(nil), buf[:n]...)
		h.mu.Lock()
		h.client = from
		// A long header (0x80) of type Initial (0) or 0-RTT (1) passes.
		early := b[0]&0x80 != 0 && (b[0]>>4)&0x3 <= 1
		if h.holding && !early {
			h.held = append(h.held, b)
			b = nil
		}
		h.mu.Unlock()
		if b != nil {
			h.back.Write(b)
		}
	}
}

func (h *handshakeHolder) toClient() {
	buf := make([]byte, 65536)
	for {
		n, err := h.back.Read(buf)
		if err != nil {
			return
		}
		h.mu.Lock()
		client := h.client
		h.mu.Unlock()
		h.front.WriteToUDP(buf[:n], client)
	}
}

// release sends what was held, and holds nothing from now on.
func (h *handshakeHolder) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holding = false
	for _, b := range h.held {
		h.back.Write(b)
	}
	h.held = nil
}
