package integration_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
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
	slow(t, earlyDataRace)
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
			r, early, url := sendEarly(t, s, cache, path, []string{"sid=" + ck.Value})
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
			r = httpsDo(t, early, http.MethodGet, url, []string{"sid=" + ck.Value})
			if r.seen.Headers.Get("Early-Data") != "" {
				t.Fatalf("the request after the handshake still came in early data")
			}
			expectSession(t, r, map[string]string{"X-Session-User": "alice"})
		})
	}
}

// earlyDataRace is why the tests that send 0-RTT requests run once, in
// CI's pass without -race: quic-go's client applies the server's
// transport parameters when the handshake completes while a stream opened
// in 0-RTT reads them (quic-go/quic-go#4303, open), and the race detector
// fails the test for that race in the test's own client.
const earlyDataRace = "its HTTP/3 client sends 0-RTT, whose client side races in quic-go (quic-go/quic-go#4303)"

// sendEarly sends a GET in 0-RTT on a new connection that resumes the TLS
// session of cache's ticket, with the client's handshake held back
// (holdHandshake) so that it reaches Caddy as early data. It returns the
// answer, and the client and URL, whose connection is then released to
// complete its handshake. The server may refuse or drop the 0-RTT data
// (quic-go does when its packets come before the connection's, which a
// loaded machine makes likelier), and the client then sends the request
// again under keys the holder keeps back, so no answer comes: such an
// attempt is given up after a few seconds and made again, with a ticket
// of a new connection, up to three times.
func sendEarly(t *testing.T, s *site, cache *ticketCache, path string, cookies []string, headers ...string) (*response, *http.Client, string) {
	t.Helper()
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			cache = newTicketCache()
			fresh := h3Client(t, cache)
			httpsDo(t, fresh, http.MethodGet, s.httpsURL("/"), nil)
			cache.await(t)
			fresh.Transport.(*http3.Transport).Close()
		}
		holder := holdHandshake(t, s.port)
		early := h3Client(t, cache)
		early.Timeout = 4 * time.Second
		url := fmt.Sprintf("https://127.0.0.1:%d%s", holder.port(), path)
		r, err := httpsTry(t, early, http3.MethodGet0RTT, url, cookies, headers...)
		holder.release()
		if err == nil {
			early.Timeout = 10 * time.Second
			return r, early, url
		}
		last = err
		t.Logf("attempt %d of the request in early data got no answer, sending it again: %v", attempt+1, err)
		early.Transport.(*http3.Transport).Close()
	}
	t.Fatalf("three requests in early data got no answer; the last: %v", last)
	return nil, nil, ""
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
		if h.holding && !onlyEarly(b) {
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

// onlyEarly reports whether the datagram b holds only Initial and 0-RTT
// packets (long headers of types 0 and 1), which carry the client's hello
// and its early data; a client coalesces its Finished, in a Handshake
// packet, with an Initial one.
func onlyEarly(b []byte) bool {
	for len(b) > 0 {
		if b[0]&0x80 == 0 || (b[0]>>4)&0x3 > 1 || len(b) < 6 {
			return false // a short header (1-RTT), Handshake or Retry
		}
		initial := (b[0]>>4)&0x3 == 0
		rest := b[5:] // after the first byte and the version
		for range 2 { // destination and source connection IDs
			if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
				return false
			}
			rest = rest[1+int(rest[0]):]
		}
		if initial {
			n, ok := varint(&rest)
			if !ok || uint64(len(rest)) < n {
				return false
			}
			rest = rest[n:] // the token
		}
		n, ok := varint(&rest)
		if !ok || uint64(len(rest)) < n {
			return false
		}
		b = rest[n:] // the next packet of the datagram
	}
	return true
}

// varint takes a QUIC variable-length integer off the front of b.
func varint(b *[]byte) (uint64, bool) {
	if len(*b) == 0 {
		return 0, false
	}
	size := 1 << ((*b)[0] >> 6)
	if len(*b) < size {
		return 0, false
	}
	v := uint64((*b)[0] & 0x3f)
	for _, c := range (*b)[1:size] {
		v = v<<8 | uint64(c)
	}
	*b = (*b)[size:]
	return v, true
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

// earlyRefuser is hostileApp behind an app that follows RFC 8470: it
// answers 425 Too Early to every request that Caddy marks as received in
// TLS early data (Early-Data: 1), which an attacker may have replayed.
type earlyRefuser struct{ hostileApp }

func (a *earlyRefuser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Early-Data") == "1" {
		w.WriteHeader(http.StatusTooEarly)
		return
	}
	a.hostileApp.ServeHTTP(w, r)
}

// TestTooEarlyAppliesNothing: an app refuses a request received in 0-RTT
// early data with 425 Too Early, as RFC 8470 has it: the request was not
// carried out, and the client sends it again once the handshake is done.
// So the session is as if the request never came: the commands on the 425
// (here those of the site's `header /logout X-Session-Destroy true`) are
// not applied, and the flash values the request took are there for the
// retry.
func TestTooEarlyAppliesNothing(t *testing.T) {
	slow(t, earlyDataRace)
	// Caddy sorts the header directive before session.
	s := newHTTPSSiteFor(t, new(earlyRefuser), "", "header /logout X-Session-Destroy true", "")
	navigation := []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html"}
	cache := newTicketCache()
	first := h3Client(t, cache)
	login := httpsDo(t, first, http.MethodGet, s.httpsURL("/login"), nil, "Test-Header", "X-Session-Set-User: alice")
	cookie := []string{"sid=" + login.sessionCookie().Value}
	httpsDo(t, first, http.MethodPost, s.httpsURL("/settings"), cookie, "Test-Header", "X-Session-Flash-Notice: Saved")
	cache.await(t)
	first.Transport.(*http3.Transport).Close()

	r, early, url := sendEarly(t, s, cache, "/logout", cookie, navigation...)
	if r.StatusCode != http.StatusTooEarly {
		t.Fatalf("the app answered %d to a request in early data, want 425", r.StatusCode)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("the 425 set cookies %q", c)
	}
	r = httpsDo(t, early, http.MethodGet, strings.TrimSuffix(url, "/logout")+"/", cookie, navigation...)
	expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Flash-Notice": "Saved"})
}
