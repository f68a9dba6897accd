package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// startRedisCaddy starts a Caddy process from the binary with the session
// handler on the Redis store at redisURL, options added to the store's
// block, in front of up. It returns the site to send requests to.
func startRedisCaddy(t *testing.T, redisURL, options string, up *upstream) (*site, *process) {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	p := startCaddy(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store redis %s {
			%s
		}
		# The instances listen on ports of their own here, so their
		# default realms differ: they name one.
		realm shop
	}
	reverse_proxy %s
}
`, admin, port, redisURL, options, up.addr()), admin)
	waitPort(t, port)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	return s, p
}

// TestRedisSharedByTwoInstances runs two separate Caddy processes on one
// Redis, as behind a load balancer: whichever instance a request reaches,
// it sees the same session.
func TestRedisSharedByTwoInstances(t *testing.T) {
	slow(t, "two Caddy binaries on one Redis")
	srv := redistest.Start(t)
	up := startUpstream(t)
	a, _ := startRedisCaddy(t, srv.URL(), "", up)
	b, _ := startRedisCaddy(t, srv.URL(), "", up)
	// One browser, whose requests the load balancer sends to A or B.
	sid := ""
	via := func(s *site, path string, commands ...string) *response {
		t.Helper()
		v := &visitor{site: s, sid: sid}
		r := v.get(path, commands...)
		expectStatus(t, r, http.StatusOK)
		sid = v.sid
		return r
	}
	// with sends a request with a given ID, leaving the browser's alone.
	with := func(s *site, id string) *response {
		t.Helper()
		r := (&visitor{site: s, sid: id}).get("/")
		expectStatus(t, r, http.StatusOK)
		return r
	}

	// A login through A is seen on B.
	via(a, "/login", "X-Session-Set-User: alice")
	if sid == "" {
		t.Fatal("the login issued no session")
	}
	expectSession(t, via(b, "/"), map[string]string{"X-Session-User": "alice"})

	// A cart item added on B is seen on A.
	via(b, "/cart", "X-Session-Set-Cart: apple")
	expectSession(t, via(a, "/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})

	// endedOn checks that s refuses id: at once on the instance that
	// ended it (its own write drops its cached copy before the response),
	// and on the other one within the revocation window, the time
	// Redis's invalidation takes to reach it (README, "Reads from a local
	// cache"; the invalidation case of the bench measures it). There, a
	// request that loaded the session from the cache just before the news
	// came has its answer withheld once it does (403, with nothing of the
	// app's answer: withheld.go), which is the end seen too.
	endedOn := func(s *site, id string, own bool) {
		t.Helper()
		deadline := time.Now().Add(revocationBound)
		for {
			r := (&visitor{site: s, sid: id}).get("/")
			if !own && r.StatusCode == http.StatusForbidden && len(r.seen.Headers) == 0 {
				return
			}
			expectStatus(t, r, http.StatusOK)
			if len(r.session()) == 0 {
				return
			}
			if own || time.Now().After(deadline) {
				expectSession(t, r, map[string]string{})
			}
		}
	}

	// A rotation on B makes the old ID dead on both.
	old := sid
	via(b, "/", "X-Session-Renew: true")
	if sid == "" || sid == old {
		t.Fatalf("the renewal issued no new ID (%q)", sid)
	}
	for _, s := range []*site{b, a} {
		endedOn(s, old, s == b)
		expectSession(t, with(s, sid), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
	}

	// A logout on A ends the session on B.
	loggedIn := sid
	r := via(a, "/logout", "X-Session-Destroy: true")
	if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 || sid != "" {
		t.Fatalf("the logout did not expire the cookie: %v", c)
	}
	for _, s := range []*site{a, b} {
		endedOn(s, loggedIn, s == a)
	}
}

// TestRedisOutage stops Redis under a running Caddy: requests that need the
// session fail with 503, never a 200 that lost a write; when Redis is back,
// the same Caddy serves again with no reload.
func TestRedisOutage(t *testing.T) {
	slow(t, "the Caddy binary, waiting out Redis timeouts while Redis is down")
	srv := redistest.Start(t)
	up := startUpstream(t)
	s, p := startRedisCaddy(t, srv.URL(), "dial_timeout 1s\n\t\t\tread_timeout 1s", up)
	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})

	srv.Stop()
	// Reading the session fails, once Caddy has seen its connection
	// close, which drops the copy of the session it holds in its cache
	// (until then a read may still be answered from the copy, which no
	// write can have changed while Redis is down).
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := v.get("/")
		if r.StatusCode == http.StatusServiceUnavailable {
			break
		}
		expectSession(t, r, map[string]string{"X-Session-User": "alice"})
		if time.Now().After(deadline) {
			t.Fatal("reads were still answered from the cache 10s after Redis stopped")
		}
	}
	// Writing it fails, and the response says so instead of pretending.
	expectStatus(t, v.get("/cart", "X-Session-Set-Cart: apple"), http.StatusServiceUnavailable)
	newcomer := s.visitor()
	r := newcomer.get("/login", "X-Session-Set-User: bob")
	expectStatus(t, r, http.StatusServiceUnavailable)
	if c := r.sessionCookie(); c != nil {
		t.Fatalf("a login that was not stored issued a cookie: %v", c)
	}
	// A request that needs no session is served: nothing is lost by it.
	expectStatus(t, s.visitor().get("/"), http.StatusOK)

	// Redis comes back on the same port, empty (the test server keeps
	// nothing on disk): the same Caddy works again.
	// A connection the client was dialling as Redis went down may fail
	// once more (EOF) after it is back: that request gets its 503 like
	// the others, and the next ones are served.
	srv.Start()
	// The client redials every second: the bound only ends a failing
	// test, on a machine that may be busy with others.
	deadline = time.Now().Add(20 * time.Second)
	for {
		r = v.get("/")
		if r.StatusCode == http.StatusOK {
			break
		}
		expectStatus(t, r, http.StatusServiceUnavailable)
		if time.Now().After(deadline) {
			t.Fatal("requests still failed 20s after Redis came back")
		}
	}
	expectSession(t, r, map[string]string{})
	// Writes go through connections of their own, which may fail once
	// the same way: a login then gets its 503, without a cookie.
	for {
		r = newcomer.get("/login", "X-Session-Set-User: bob")
		if r.StatusCode == http.StatusOK {
			break
		}
		expectStatus(t, r, http.StatusServiceUnavailable)
		if c := r.sessionCookie(); c != nil {
			t.Fatalf("a login that was not stored issued a cookie: %v", c)
		}
		if time.Now().After(deadline) {
			t.Fatal("logins still failed 20s after Redis came back")
		}
	}
	if newcomer.sid == "" {
		t.Fatal("the login after the outage issued no session")
	}
	expectSession(t, newcomer.get("/"), map[string]string{"X-Session-User": "bob"})

	// The log said what failed. It is read once the process has ended,
	// since the process writes to it until then.
	p.stop()
	if logs := p.logs.String(); !strings.Contains(logs, "redis session store") || !strings.Contains(logs, "connection refused") {
		t.Errorf("the log does not say that Redis failed:\n%s", logs)
	}
}
