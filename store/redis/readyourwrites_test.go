package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// holdingProxy forwards TCP connections to a Redis, and can hold back
// what Redis answers on the first connection it accepted (a client's
// pipelining connection, which carries its cached reads) until released,
// so that a test can keep a read in flight there while the client writes
// over another connection.
type holdingProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	n       int
	gate    chan struct{} // closed, or nil, when answers pass
	arrived chan struct{} // closed when an answer is held
}

func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.release()
	})
	go p.serve()
	return p
}

func (p *holdingProxy) addr() string { return p.ln.Addr().String() }

func (p *holdingProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		first := p.n == 0
		p.n++
		p.mu.Unlock()
		go func() {
			_, _ = io.Copy(server, client)
			server.Close()
		}()
		go p.answer(client, server, first)
	}
}

// answer copies what Redis sends to the client, holding it back on the
// first connection while the proxy holds.
func (p *holdingProxy) answer(client, server net.Conn, first bool) {
	defer client.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 && first {
			p.mu.Lock()
			gate, arrived := p.gate, p.arrived
			p.mu.Unlock()
			if gate != nil {
				select {
				case <-arrived:
				default:
					close(arrived)
				}
				<-gate
			}
		}
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold holds back the answers on the first connection from now on; the
// channel is closed when one arrives.
func (p *holdingProxy) hold() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate, p.arrived = make(chan struct{}), make(chan struct{})
	return p.arrived
}

// release lets the answers held back, and those after them, through.
func (p *holdingProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// flightSignal is a connection's cache that says when a read of a key
// asks it for a copy.
type flightSignal struct {
	rueidis.CacheStore
	flights chan string
}

func (f *flightSignal) Flight(key, cmd string, ttl time.Duration, now time.Time) (rueidis.RedisMessage, rueidis.CacheEntry) {
	v, e := f.CacheStore.Flight(key, cmd, ttl, now)
	f.flights <- key
	return v, e
}

// TestReadAfterOwnLogoutSeesIt: this instance logs a session out while a
// read of the session, sent before the logout, still waits for its answer
// on the connection of cached reads (the copy had just expired). With
// wait_replicas the logout runs on a connection of its own, so its answer
// can come first. A request that reads the session after the logout
// returned must find it ended ("Read your writes", README, "Reads from a
// local cache"), not be handed the answer of the earlier read, which is
// the session as it was before the logout.
func TestReadAfterOwnLogoutSeesIt(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	eventually(t, "the replica to sync", func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	proxy := startHoldingProxy(t, master.Addr())

	cache := NewCache(1 << 20)
	flights := make(chan string, 64)
	o := rueidis.ClientOption{InitAddress: []string{proxy.addr()}, ForceSingleClient: true, DisableRetry: true}
	cache.Configure(&o)
	perConn := o.NewCacheStoreFn
	o.NewCacheStoreFn = func(opt rueidis.CacheStoreOption) rueidis.CacheStore {
		return &flightSignal{CacheStore: perConn(opt), flights: flights}
	}
	client, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	s, err := NewWithClient(client, Options{Cache: cache, WaitReplicas: 1, WaitTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := create(t, s, "logged-out", base, timeouts, map[string]string{"user": "alice"})
	key := s.SessionKey(h)
	if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
		t.Fatal(err)
	}
	drain := func() {
		for {
			select {
			case <-flights:
			default:
				return
			}
		}
	}
	// awaitFlight waits until a read of key asks a connection's cache.
	awaitFlight := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for {
			select {
			case k := <-flights:
				if k == key {
					return
				}
			case <-ctx.Done():
				t.Fatalf("%s never asked the cache", what)
			}
		}
	}
	type loaded struct {
		rec *session.Record
		err error
	}
	load := func() chan loaded {
		ch := make(chan loaded, 1)
		go func() {
			rec, err := s.Load(t.Context(), h, base, timeouts)
			ch <- loaded{rec, err}
		}()
		return ch
	}

	var before chan loaded
	s.beforeWrite = func() {
		s.beforeWrite = nil
		// The logout read the copy; the copy now expires, and a request
		// reads the session anew, its answer held back on the way.
		cache.Invalidate(key)
		arrived := proxy.hold()
		drain()
		before = load()
		awaitFlight("the read before the logout")
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the answer to the read before the logout never came")
		}
	}
	if _, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Destroy: true},
		Identity: "user", Seen: "alice", Now: base, Timeouts: timeouts, Limits: limits}); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if before == nil {
		t.Fatal("the logout wrote without reading the copy first")
	}
	drain()
	after := load()
	awaitFlight("the read after the logout")
	proxy.release()

	if got := <-before; got.err != nil {
		t.Fatalf("the read sent before the logout: %v", got.err)
	}
	if got := <-after; !errors.Is(got.err, store.ErrNotFound) {
		t.Fatalf("a read after the logout returned got %+v, %v; want the session ended", got.rec, got.err)
	}
}
