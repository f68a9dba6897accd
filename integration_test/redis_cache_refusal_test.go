package integration_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// heldLink is a TCP proxy between one Caddy instance and Redis whose
// answers (Redis to Caddy) can be held back: while held, the instance's
// commands still reach Redis, but nothing Redis sends reaches the
// instance, neither the answers nor the invalidation messages of client
// tracking. It plays a connection whose invalidations are late, which the
// README's revocation window allows for reads (up to cache_ttl), step by
// step.
type heldLink struct {
	t  *testing.T
	ln net.Listener

	mu      sync.Mutex
	held    bool
	release chan struct{} // closed by Release
	sent    chan struct{} // closed when the instance sends anything while held
	conns   []net.Conn
}

func startHeldLink(t *testing.T, redisAddr string) *heldLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &heldLink{t: t, ln: ln}
	t.Cleanup(l.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", redisAddr)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, r)
			l.mu.Unlock()
			go l.pipe(r, c, l.up)
			go l.pipe(c, r, l.down)
		}
	}()
	return l
}

func (l *heldLink) url() string { return "redis://" + l.ln.Addr().String() }

// up is called before bytes from the instance go on to Redis.
func (l *heldLink) up() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		select {
		case <-l.sent:
		default:
			close(l.sent)
		}
	}
}

// down is called before bytes from Redis go on to the instance: it waits
// while the link is held.
func (l *heldLink) down() {
	l.mu.Lock()
	held, release := l.held, l.release
	l.mu.Unlock()
	if held {
		<-release
	}
}

func (l *heldLink) pipe(dst, src net.Conn, gate func()) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Hold holds back whatever Redis sends the instance from now on.
func (l *heldLink) Hold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.release, l.sent = true, make(chan struct{}), make(chan struct{})
}

// Release lets what was held through, in order.
func (l *heldLink) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		l.held = false
		close(l.release)
	}
}

// Sent is closed once the instance sends Redis anything while held.
func (l *heldLink) Sent() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

func (l *heldLink) close() {
	l.Release()
	l.ln.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// sessionIn returns the session keys (lowercase, without the prefix) that
// the upstream saw, from the body it echoed.
func sessionIn(t *testing.T, body string) map[string]string {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("the upstream's answer is not its echo: %v: %q", err, body)
	}
	out := map[string]string{}
	for name, vals := range s.Headers {
		if k, ok := strings.CutPrefix(strings.ToLower(name), "x-session-"); ok && !strings.HasPrefix(k, "meta-") {
			out[k] = strings.Join(vals, ",")
		}
	}
	return out
}

// TestRefusalNotDecidedOnAStaleCachedCopy runs two instances of one
// realm on one Redis, A and B, as behind a load balancer. B has read the
// session, so it holds a copy in its cache. A changes the session in a way
// that makes room (a key deleted, a value made shorter), and Redis's
// invalidation of B's copy is late (held back on B's connection, as a slow
// or lost message would be). A response on B then sets a key that fits the
// limits as the session now stands in Redis, but would not fit the copy
// B holds. Writes are decided on what Redis holds, never on the cache
// (README, "Reads from a local cache"): the change must be stored, not
// refused as a broken limit on the stale copy and silently dropped with a
// 200.
func TestRefusalNotDecidedOnAStaleCachedCopy(t *testing.T) {
	rows := []struct {
		name   string
		limits string
		login  []string // on A: the session B caches
		onA    []string // A's change, which makes room
		onB    []string // B's change, which fits the session as A left it
		want   map[string]string
	}{
		{
			name:   "keys",
			limits: "keys 3",
			login:  []string{"X-Session-Set-User: alice", "X-Session-Set-A: 1", "X-Session-Set-B: 2"},
			onA:    []string{"X-Session-Delete: b"},
			onB:    []string{"X-Session-Set-C: 3"},
			want:   map[string]string{"user": "alice", "a": "1", "c": "3"},
		},
		{
			name:   "session_size",
			limits: "value_size 48\n\t\t\tsession_size 64",
			login:  []string{"X-Session-Set-User: alice", "X-Session-Set-Cart: " + strings.Repeat("x", 40)},
			onA:    []string{"X-Session-Set-Cart: y"},
			onB:    []string{"X-Session-Set-Theme: " + strings.Repeat("d", 30)},
			want:   map[string]string{"user": "alice", "cart": "y", "theme": strings.Repeat("d", 30)},
		},
		{
			name:   "flash values count with the keys",
			limits: "keys 3",
			login:  []string{"X-Session-Set-User: alice", "X-Session-Set-A: 1", "X-Session-Set-B: 2"},
			onA:    []string{"X-Session-Delete: b"},
			onB:    []string{"X-Session-Flash-Notice: saved"},
			want:   map[string]string{"user": "alice", "a": "1", "flash-notice": "saved"},
		},
		{
			// The other way round: what Redis holds breaks the limit as
			// well, and a read past the cache must still refuse it.
			name:   "still over the limit",
			limits: "keys 3",
			login:  []string{"X-Session-Set-User: alice", "X-Session-Set-A: 1", "X-Session-Set-B: 2"},
			onA:    []string{"X-Session-Set-A: 10"},
			onB:    []string{"X-Session-Set-C: 3"},
			want:   map[string]string{"user": "alice", "a": "10", "b": "2"},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			srv := redistest.Start(t)
			link := startHeldLink(t, srv.Addr())
			m := newMultiSite(t, "a", "b")
			site := func(url string) string {
				return "session {\n\t\tstore redis " + url + "\n\t\trealm shop\n\t\tlimits {\n\t\t\t" + row.limits + "\n\t\t}\n\t}\n\treverse_proxy {up}"
			}
			m.load([2]string{"a", site(srv.URL())}, [2]string{"b", site(link.url())})

			cookie := m.login("a", "sid", row.login...)
			// B reads the session twice: the second read is its cached copy.
			for range 2 {
				res, body := m.get("b", "/", cookie)
				if res.StatusCode != http.StatusOK || sessionIn(t, body)["user"] != "alice" {
					t.Fatalf("B does not serve the session A started: %d %s", res.StatusCode, body)
				}
			}
			reads := hgetallCalls(t, srv)
			if _, body := m.get("b", "/", cookie); sessionIn(t, body)["user"] != "alice" {
				t.Fatalf("B lost the session: %s", body)
			}
			if n := hgetallCalls(t, srv) - reads; n != 0 {
				t.Fatalf("B read the session from Redis again (%d HGETALL): it holds no cached copy, and the test proves nothing", n)
			}

			link.Hold()
			if res, _ := m.get("a", "/", cookie, row.onA...); res.StatusCode != http.StatusOK {
				t.Fatalf("A's change: %d", res.StatusCode)
			}
			type answer struct {
				res  *http.Response
				body string
			}
			done := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(m.ports["b"]))+"/", nil)
				req.Header.Set("Cookie", cookie)
				for _, c := range row.onB {
					req.Header.Add("Test-Header", c)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- answer{}
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				done <- answer{res, string(b)}
			}()
			var got answer
			select {
			case got = <-done:
				// Answered from the cache alone, with Redis's answers
				// held back: whatever it decided, it decided on the copy.
				link.Release()
			case <-link.Sent():
				// B asked Redis: let it answer.
				link.Release()
				got = <-done
			}
			if got.res == nil {
				t.Fatal("B's request failed before an answer")
			}
			if got.res.StatusCode != http.StatusOK {
				t.Fatalf("B's change got %d, want 200", got.res.StatusCode)
			}
			// A navigation, which takes the flash values too.
			_, body := m.send("a", http.MethodGet, "/", http.Header{"Cookie": {cookie}, "Sec-Fetch-Mode": {"navigate"}})
			if s := sessionIn(t, body); !mapsEqual(s, row.want) {
				t.Fatalf("the session is %v after B's change, want %v: B judged its change by the limits on its stale cached copy, not on what Redis holds", s, row.want)
			}
		})
	}
}
