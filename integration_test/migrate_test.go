package integration_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/transfer"
)

// Moving a running Caddy's sessions to another store and back, with
// fallback_store and caddy session migrate, while traffic runs: every
// cookie issued before keeps opening its session, with its data and
// deadlines, and no write made during the move is lost.

// migrateConfig is the Caddyfile of the migrating Caddy: the session
// handler on the store line, and on the fallback_store line if any.
func migrateConfig(admin, port int, up *upstream, storeLine, fallbackLine string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
		%s
		realm shop
	}
	reverse_proxy %s
}
`, admin, port, storeLine, fallbackLine, up.addr())
}

// reloadProcess loads config into the running process, as caddy reload
// does.
func reloadProcess(t *testing.T, p *process, config string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", p.admin), strings.NewReader(config))
	req.Header.Set("Content-Type", "text/caddyfile")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("reloading: %s\n%s", res.Status, p.logs)
	}
}

// movedSession is one session of the test, as the test knows it.
type movedSession struct {
	id, user string
	cart     string // the cart the last acknowledged write set
	entry    store.Entry
}

// seedSessions writes n sessions of realm shop to a new bolt file at db,
// through caddy session import, and returns them.
func seedSessions(t *testing.T, db string, n int) []*movedSession {
	t.Helper()
	file := filepath.Join(t.TempDir(), "seed.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	now := time.Now()
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}
	sessions := make([]*movedSession, n)
	for i := range sessions {
		s := &movedSession{id: session.NewID(), user: fmt.Sprint("user-", i)}
		rec := timeouts.NewRecord(now.Add(-time.Duration(i) * time.Millisecond))
		rec.Values["user"] = s.user
		rec.Realm = "shop"
		s.entry = store.Entry{Hash: session.HashID(s.id), Record: rec, Identity: "user"}
		if err := transfer.Write(w, s.entry); err != nil {
			t.Fatal(err)
		}
		sessions[i] = s
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out := ok(t, nil, "import", "--bolt", db, "--input", file); !strings.Contains(out, fmt.Sprintf("imported %d sessions", n)) {
		t.Fatalf("seeding printed %q", out)
	}
	return sessions
}

// traffic uses sessions at random until stop is closed: reads, and
// writes of the cart, recording each acknowledged write. Each goroutine
// has sessions of its own, so that the last write of a session is the
// one it recorded last. Any answer but 200 is an error.
func traffic(s *site, sessions []*movedSession, stop <-chan struct{}) (done func() []string) {
	const workers = 4
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ms := sessions[rng.IntN(len(sessions)/workers)*workers+g]
				req, _ := http.NewRequest(http.MethodGet, s.url("/"), nil)
				req.Header.Set("Cookie", "sid="+ms.id)
				cart := ""
				if i%3 == 0 {
					cart = fmt.Sprintf("item-%d-%d", g, i)
					req.Header.Set("Test-Header", "X-Session-Set-Cart: "+cart)
				}
				res, err := s.tester.Client.Do(req)
				if err == nil {
					res.Body.Close()
				}
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err.Error())
				case res.StatusCode != http.StatusOK:
					errs = append(errs, fmt.Sprintf("%s: status %d", ms.user, res.StatusCode))
				case cart != "":
					ms.cart = cart
				}
				mu.Unlock()
			}
		})
	}
	return func() []string {
		wg.Wait()
		return errs
	}
}

// migrateWhileServing runs caddy session migrate through p's admin API
// while traffic runs, and returns what it printed.
func migrateWhileServing(t *testing.T, s *site, p *process, sessions []*movedSession) store.CopyStats {
	t.Helper()
	stop := make(chan struct{})
	done := traffic(s, sessions, stop)
	var stats store.CopyStats
	okJSON(t, p, &stats, "migrate", "--batch", "500")
	close(stop)
	if errs := done(); len(errs) > 0 {
		t.Fatalf("%d requests failed during the migration, the first: %s", len(errs), errs[0])
	}
	return stats
}

// wantEverySession checks that every cookie opens its session with its
// data, and that sessions kept their times: creation and absolute
// deadline as they were, and an idle deadline that only a use moved on.
func wantEverySession(t *testing.T, s *site, p *process, sessions []*movedSession, where string) {
	t.Helper()
	for i, ms := range sessions {
		r := (&visitor{site: s, sid: ms.id}).get("/")
		if got := r.session(); got["X-Session-User"] != ms.user || got["X-Session-Cart"] != ms.cart {
			t.Fatalf("%s: the session of %s is %v, want user %s and cart %q", where, ms.user, got, ms.user, ms.cart)
		}
		if i%500 == 0 {
			got, rec := showOf(t, p, ms.id), ms.entry.Record
			if !got.Created.Equal(rec.Created) || !got.AbsoluteDeadline.Equal(rec.AbsoluteDeadline) || got.IdleDeadline.Before(rec.IdleDeadline) {
				t.Fatalf("%s: the session of %s has times %+v, want those of %+v", where, ms.user, got, rec)
			}
		}
	}
}

// TestMigrateWhileServing moves 10,000 sessions from bolt to Redis and
// back through a running Caddy, with traffic reading and writing them
// during each move.
func TestMigrateWhileServing(t *testing.T) {
	slow(t, "10,000 sessions moved twice through the Caddy binary, with traffic")
	const n = 10_000
	up := startUpstream(t)
	srv := redistest.Start(t)
	db, back := filepath.Join(t.TempDir(), "sessions.db"), filepath.Join(t.TempDir(), "back.db")
	sessions := seedSessions(t, db, n)

	port, admin := freePort(t), freePort(t)
	p := startCaddy(t, migrateConfig(admin, port, up, "store bolt "+db, ""), admin)
	waitPort(t, port)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	s.tester.Client.Timeout = 30 * time.Second

	steps := []struct {
		name, to, from string
	}{
		{"bolt to Redis", "store redis " + srv.URL(), "fallback_store bolt " + db},
		{"Redis back to bolt", "store bolt " + back, "fallback_store redis " + srv.URL()},
	}
	for _, step := range steps {
		reloadProcess(t, p, migrateConfig(admin, port, up, step.to, step.from))
		// Until the previous config's socket closes, a new connection of
		// the traffic may land on it and be reset (waitOneListener).
		waitOneListener(t, port)
		stats := migrateWhileServing(t, s, p, sessions)
		if stats.Ended != 0 || stats.Copied+stats.Unchanged+stats.Newer != n {
			t.Fatalf("%s: migrate did %+v, want every one of %d sessions copied or already there", step.name, stats, n)
		}
		t.Logf("%s: %+v", step.name, stats)
		// The move is over: the old store goes.
		reloadProcess(t, p, migrateConfig(admin, port, up, step.to, ""))
		waitOneListener(t, port)
		wantEverySession(t, s, p, sessions, step.name)
	}
}
