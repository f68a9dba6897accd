package integration_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// revocationBound is how soon an ID that one instance ended must be refused
// by another instance that has the session in its cache. It is far below
// cache_ttl (a minute by default, what these tests' Caddys use), so that
// only Redis's invalidation can explain a refusal within it, and far above
// the lag itself (milliseconds: the bench measures it, p50 and p99), so
// that a machine busy with other tests' servers cannot fail it: a speed
// is the bench's to report, not a test's to assert.
const revocationBound = 10 * time.Second

// TestRevocationReachesTheOtherInstance runs two Caddy processes on one
// Redis, as behind a load balancer. B reads a session, so that it holds a
// copy in its cache; then A ends the session by a logout, an admin
// revocation or a rotation, and B must refuse the old ID within
// revocationBound of A's answer.
func TestRevocationReachesTheOtherInstance(t *testing.T) {
	slow(t, "two Caddy binaries on one Redis")
	if raceDetector {
		t.Skip("skipped under -race: the bound is about Redis and Caddy, and the race detector slows this test's own polling")
	}
	srv := redistest.Start(t)
	up := startUpstream(t)
	a, pa := startRedisCaddy(t, srv.URL(), "", up)
	b, _ := startRedisCaddy(t, srv.URL(), "", up)

	kinds := []struct {
		name string
		end  func(t *testing.T, v *visitor, user string)
	}{
		{"logout", func(t *testing.T, v *visitor, _ string) {
			expectStatus(t, v.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}},
		{"admin revocation", func(t *testing.T, _ *visitor, user string) {
			res, err := http.Post(fmt.Sprintf("http://localhost:%d/session/revoke", pa.admin), "application/json",
				strings.NewReader(fmt.Sprintf(`{"value": %q}`, user)))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %s", res.Status)
			}
		}},
		{"rotation", func(t *testing.T, v *visitor, _ string) {
			expectStatus(t, v.get("/login", "X-Session-Set-User: someone-else"), http.StatusOK)
		}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for i := range 20 {
				user := fmt.Sprintf("%s-%d", strings.ReplaceAll(kind.name, " ", "-"), i)
				v := a.visitor()
				expectStatus(t, v.get("/login", "X-Session-Set-User: "+user), http.StatusOK)
				old := v.sid
				onB := &visitor{site: b, sid: old}
				expectSession(t, onB.get("/"), map[string]string{"X-Session-User": user})
				// B holds the session in its cache now: its next read
				// asks Redis nothing.
				reads := hgetallCalls(t, srv)
				expectSession(t, onB.get("/"), map[string]string{"X-Session-User": user})
				if n := hgetallCalls(t, srv) - reads; n != 0 {
					t.Fatalf("try %d: B's second read of the session ran HGETALL %d times: it has no cached copy", i, n)
				}
				kind.end(t, v, user)
				ended := time.Now()
				for {
					r := (&visitor{site: b, sid: old}).get("/")
					if r.StatusCode == http.StatusOK && len(r.session()) == 0 {
						break
					}
					if lag := time.Since(ended); lag > revocationBound {
						t.Fatalf("try %d: B still served the ended session %s after A's answer", i, lag)
					}
				}
			}
		})
	}
}

// hgetallCalls returns how many HGETALL commands Redis has run.
func hgetallCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	info, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(info, "cmdstat_hgetall:calls=")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	return n
}
