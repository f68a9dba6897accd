package bolt

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The density of the file: bytes of bbolt pages (branch and leaf pages
// allocated, all buckets, as `bbolt stats` counts them) per session. Issue
// 11 bounds it at 50,000 one-key sessions; TestDensityReport measures it,
// TestDensity keeps a small store under a bound.
//
//	CADDY_SESSION_DENSITY=50000 go test -count=1 -run TestDensityReport -v ./store/bolt/
//
// measures 50,000 logins; a second number (CADDY_SESSION_DENSITY=50000,1000000)
// adds a population of that many three-key sessions written the way
// `go run ./bench` populates its scale case.

// densityRealm is a realm as Caddy names a site listening on :8081.
const densityRealm = "127.0.0.1@:8081"

// pageStats sums the page statistics of every bucket of the file.
type pageStats struct {
	buckets  map[string]bbolt.BucketStats
	total    bbolt.BucketStats
	fileSize int64 // free pages and bbolt's growth in steps included
}

func (p pageStats) bytes() int { return p.total.BranchAlloc + p.total.LeafAlloc }

// perSession is the bytes of pages per session of n.
func (p pageStats) perSession(n int) float64 { return float64(p.bytes()) / float64(n) }

func readPageStats(t testing.TB, s *Store) pageStats {
	t.Helper()
	p := pageStats{buckets: map[string]bbolt.BucketStats{}}
	if fi, err := os.Stat(s.Path()); err == nil {
		p.fileSize = fi.Size()
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			st := b.Stats()
			p.buckets[string(name)] = st
			p.total.Add(st)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// logf reports p per session of n, bucket by bucket.
func (p pageStats) logf(t testing.TB, what string, n int) {
	t.Helper()
	t.Logf("%s: %d sessions, %.1f bytes of pages each (%d branch + %d leaf pages; file %.1f MiB)",
		what, n, p.perSession(n), p.total.BranchPageN, p.total.LeafPageN, float64(p.fileSize)/(1<<20))
	for _, name := range slices.Sorted(maps.Keys(p.buckets)) {
		st := p.buckets[name]
		fill := 0.0
		if st.LeafAlloc > 0 {
			fill = 100 * float64(st.LeafInuse) / float64(st.LeafAlloc)
		}
		t.Logf("  %-8s %8d keys  %6.1f B/session  leaves %3.0f%% full, %.1f B used/key",
			name, st.KeyN, float64(st.BranchAlloc+st.LeafAlloc)/float64(n), fill, float64(st.LeafInuse)/float64(max(st.KeyN, 1)))
	}
}

// loginUpdate is the update of a login at now: a new session of one short
// key, as the handler writes it.
func loginUpdate(hash session.Hash, user string, now time.Time) store.Update {
	return store.Update{
		NewHash: &hash, Patch: &session.Patch{Set: map[string]string{"user": user}},
		Identity: "user", Realm: densityRealm, Now: now,
		Timeouts: session.Timeouts{Idle: session.DefaultIdleTimeout, Absolute: session.DefaultAbsoluteTimeout, TouchInterval: session.DefaultTouchInterval},
		Limits:   limits,
	}
}

// loginStorm writes n sessions of one short key through Update from
// writers goroutines, as a storm of logins reaches the store, each at the
// moment it is made, and returns their hashes and users. Users are u0,
// u1… in the order of the logins, as `go run ./bench` names them, or in
// a random order if shuffled.
func loginStorm(t testing.TB, s *Store, n, writers int, shuffled bool) ([]session.Hash, []string) {
	t.Helper()
	hashes := make([]session.Hash, n)
	users := make([]string, n)
	order := rand.Perm(n)
	for i := range hashes {
		hashes[i] = session.HashID(session.NewID())
		users[i] = "u" + strconv.Itoa(i)
		if shuffled {
			users[i] = "u" + strconv.Itoa(order[i])
		}
	}
	concurrently(t, s, n, writers, func(i int, now time.Time) store.Update {
		return loginUpdate(hashes[i], users[i], now)
	})
	return hashes, users
}

// touchAll reads each session once past the touch interval, which
// rewrites it with its later deadline.
func touchAll(t testing.TB, s *Store, hashes []session.Hash, users []string, writers int) {
	t.Helper()
	// Every login is older than a touch interval by the clock of the reads.
	later := session.DefaultTouchInterval + time.Second
	concurrently(t, s, len(hashes), writers, func(i int, now time.Time) store.Update {
		u := loginUpdate(hashes[i], "", now.Add(later))
		u.Hash, u.HasHash, u.NewHash, u.Patch, u.Seen = hashes[i], true, nil, nil, users[i]
		return u
	})
}

// concurrently makes the updates 0 to n-1 from writers goroutines.
func concurrently(t testing.TB, s *Store, n, writers int, update func(i int, now time.Time) store.Update) {
	t.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range writers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if _, err := s.Update(t.Context(), update(i, time.Now())); err != nil {
					t.Errorf("session %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// populateThreeKeys imports n sessions of three keys (about 100 bytes) as
// `go run ./bench` populates its scale case: created an hour ago, last
// seen within the touch interval, 100,000 at a time.
func populateThreeKeys(t testing.TB, s *Store, n int) {
	t.Helper()
	to := session.Timeouts{Idle: session.DefaultIdleTimeout, Absolute: session.DefaultAbsoluteTimeout, TouchInterval: session.DefaultTouchInterval}
	now := time.Now()
	const chunk = 100_000
	entries := make([]store.Entry, 0, min(n, chunk))
	for i := range n {
		rec := to.NewRecord(now.Add(-time.Hour))
		to.Touch(rec, now.Add(-time.Duration(rand.Int64N(int64(to.TouchInterval)))))
		rec.Realm = densityRealm
		rec.Values = map[string]string{
			"user":  fmt.Sprintf("user-%07d@example.com", i),
			"roles": "admin,editor,viewer",
			"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
		}
		entries = append(entries, store.Entry{Hash: session.HashID(session.NewID()), Record: rec})
		if len(entries) == cap(entries) || i == n-1 {
			if err := s.Put(t.Context(), entries, "user"); err != nil {
				t.Fatal(err)
			}
			entries = entries[:0]
		}
	}
}

func openDensityStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sessions.db"), Options{SweepInterval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDensityReport measures the density of the populations that
// CADDY_SESSION_DENSITY names: logins, then a three-key population.
func TestDensityReport(t *testing.T) {
	spec := os.Getenv("CADDY_SESSION_DENSITY")
	if spec == "" {
		t.Skip("set CADDY_SESSION_DENSITY=<logins>[,<three-key sessions>] to measure the file's density")
	}
	var logins, population int
	if _, err := fmt.Sscanf(spec, "%d,%d", &logins, &population); err != nil && logins == 0 {
		t.Fatalf("CADDY_SESSION_DENSITY=%q: want <logins>[,<three-key sessions>]", spec)
	}
	for _, shuffled := range []bool{false, true} {
		if logins == 0 {
			break
		}
		order := map[bool]string{false: "users in login order", true: "users in random order"}[shuffled]
		s := openDensityStore(t)
		start := time.Now()
		hashes, users := loginStorm(t, s, logins, 32, shuffled)
		readPageStats(t, s).logf(t, fmt.Sprintf("one-key logins, %s (%s)", order, time.Since(start).Round(time.Millisecond)), logins)
		touchAll(t, s, hashes, users, 32)
		readPageStats(t, s).logf(t, "the same, each then read past the touch interval", logins)
	}
	if population > 0 {
		s := openDensityStore(t)
		start := time.Now()
		populateThreeKeys(t, s, population)
		readPageStats(t, s).logf(t, fmt.Sprintf("three-key population (%s)", time.Since(start).Round(time.Millisecond)), population)
	}
}

// TestDensity keeps small stores as dense as the layout makes them: a lost
// FillPercent, a fill that leaves random inserts' pages near empty, a
// longer key or record shows here. At 50,000 logins the file takes about
// 250 bytes of pages per session; issue 11 asks for 280 at most.
func TestDensity(t *testing.T) {
	tests := []struct {
		name     string
		sessions int
		fill     func(t *testing.T, s *Store)
		bound    float64 // bytes of pages per session, at most
	}{
		{"one-key logins, then touched", 5_000, func(t *testing.T, s *Store) {
			hashes, users := loginStorm(t, s, 5_000, 8, false)
			touchAll(t, s, hashes, users, 8)
		}, 270},
		{"three-key sessions imported in ten transactions, deadlines in random order", 10_000, func(t *testing.T, s *Store) {
			for range 10 {
				populateThreeKeys(t, s, 1_000)
			}
		}, 460},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openDensityStore(t)
			tc.fill(t, s)
			p := readPageStats(t, s)
			got := p.perSession(tc.sessions)
			t.Logf("%.1f bytes of pages per session", got)
			if got > tc.bound {
				p.logf(t, tc.name, tc.sessions)
				t.Fatalf("%.1f bytes of pages per session, want at most %.0f", got, tc.bound)
			}
		})
	}
}
