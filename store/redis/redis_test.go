package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

var (
	base     = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	timeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	limits   = session.DefaultLimits()
)

// backend is a running Redis deployment the tests open stores on.
type backend struct {
	name  string
	addrs []string
	// single makes the client talk to the one server of addrs.
	single bool
	// configure, if set, adds to the client options what the deployment
	// needs beyond its addresses: the sentinels' master set, TLS,
	// credentials.
	configure func(o *rueidis.ClientOption)
	// admin, if set, is the same deployment as a user that may run every
	// command: the tests flush and inspect Redis through it where the
	// store's own user may not.
	admin *backend
	// waitReplicas is the Options.WaitReplicas of the deployment's stores,
	// where it has replicas to wait for.
	waitReplicas int
}

// standalone starts a single redis-server.
func standalone(t *testing.T) backend {
	srv := redistest.Start(t)
	return backend{name: "standalone", addrs: []string{srv.Addr()}, single: true}
}

// cluster starts a Redis Cluster of three masters, so that keys of
// different slots live on different nodes.
func cluster(t *testing.T) backend {
	nodes := redistest.StartCluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	return backend{name: "cluster", addrs: addrs}
}

// both runs test against a single server and against a cluster.
func both(t *testing.T, test func(t *testing.T, b backend)) {
	b := standalone(t)
	t.Run(b.name, func(t *testing.T) { test(t, b) })
	t.Run("cluster", func(t *testing.T) {
		skipClusterIfShort(t)
		test(t, cluster(t))
	})
}

// skipClusterIfShort skips a cluster test under -short: a cluster takes
// seconds to form, and CI runs these tests once without -short.
func skipClusterIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: a Redis Cluster takes seconds to form")
	}
}

// option is the client option for b, with the cache when not nil.
func (b backend) option(cache *Cache) rueidis.ClientOption {
	o := rueidis.ClientOption{InitAddress: b.addrs, ForceSingleClient: b.single, DisableCache: cache == nil, DisableRetry: true}
	if cache != nil {
		cache.Configure(&o)
	}
	if b.configure != nil {
		b.configure(&o)
	}
	return o
}

// client makes a client for b, closed with the test.
func (b backend) client(t testing.TB, cache *Cache) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(b.option(cache))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newStore opens a store with a cache of its own on a new client.
func (b backend) newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Cache == nil {
		opts.Cache = NewCache(1 << 20)
	}
	if opts.OnIndexError == nil {
		opts.OnIndexError = func(err error) { t.Errorf("index error: %v", err) }
	}
	if opts.WaitReplicas == 0 {
		opts.WaitReplicas = b.waitReplicas
	}
	s, err := NewWithClient(b.client(t, opts.Cache), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Connected before the test's first call, as the tests' stores were
	// when they flushed Redis through themselves (see
	// TestClusterFirstCallCreates for one that is not).
	mustClient(t, s)
	return s
}

// open flushes the backend and opens a store on a new client, closed
// with the test.
func (b backend) open(t *testing.T) *Store {
	t.Helper()
	s := b.newStore(t, Options{})
	flush(t, b.inspector(t, s))
	t.Cleanup(func() { s.Close() })
	return s
}

// inspector returns s, or for a backend with an admin a store with s's
// key prefix on a client of the admin, closed with the test: the store
// to flush and check Redis through, with commands s's user may lack.
func (b backend) inspector(t *testing.T, s *Store) *Store {
	t.Helper()
	if b.admin == nil {
		return s
	}
	admin, err := NewWithClient(b.admin.client(t, nil), Options{KeyPrefix: s.prefix, KeepClient: true})
	if err != nil {
		t.Fatal(err)
	}
	return admin
}

// flush empties the server, or every master of a cluster, through s.
func flush(t *testing.T, s *Store) {
	t.Helper()
	forEachNode(t, s, func(c rueidis.Client) error { return c.Do(context.Background(), c.B().Flushall().Build()).Error() })
}

// forEachNode runs fn on the server, or on every master of a cluster.
func forEachNode(t *testing.T, s *Store, fn func(c rueidis.Client) error) {
	t.Helper()
	client := mustClient(t, s)
	for _, c := range client.Nodes() {
		if err := fn(c); err != nil {
			t.Fatal(err)
		}
	}
}

func mustClient(t testing.TB, s *Store) rueidis.Client {
	t.Helper()
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do runs a command on key, behind the store's back (uncached).
func do(t *testing.T, s *Store, cmd, key string, args ...string) rueidis.RedisResult {
	t.Helper()
	c := mustClient(t, s)
	res := c.Do(context.Background(), c.B().Arbitrary(cmd).Keys(key).Args(args...).Build())
	if err := res.Error(); err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("%s %s: %v", cmd, key, err)
	}
	return res
}

func pttl(t *testing.T, s *Store, key string) time.Duration {
	t.Helper()
	ms, _ := do(t, s, "PTTL", key).AsInt64()
	return time.Duration(ms) * time.Millisecond
}

func hgetall(t *testing.T, s *Store, key string) map[string]string {
	t.Helper()
	m, _ := do(t, s, "HGETALL", key).AsStrMap()
	return m
}

// zscores returns the members of a sorted set with their scores.
func zscores(t *testing.T, s *Store, key string) map[string]string {
	t.Helper()
	arr, _ := do(t, s, "ZRANGE", key, "0", "-1", "WITHSCORES").ToArray()
	out := map[string]string{}
	for _, m := range arr {
		pair, err := m.ToArray()
		if err != nil || len(pair) != 2 {
			t.Fatalf("ZRANGE WITHSCORES of %s: %v", key, err)
		}
		member, _ := pair[0].ToString()
		score, _ := pair[1].AsFloat64()
		out[member] = strconv.FormatFloat(score, 'f', -1, 64)
	}
	return out
}

// checkedStore checks the store's invariants before it closes, so that
// every test of the conformance suite also checks the keys it leaves.
type checkedStore struct {
	*Store
	inspector *Store // the store to read Redis through for the check
	t         *testing.T
}

func (c checkedStore) Close() error {
	checkConsistent(c.t, c.inspector)
	return c.Store.Close()
}

func TestConformance(t *testing.T) {
	t.Parallel()
	both(t, conformance)
}

// conformance runs the conformance suite on b, each test on a fresh store
// of its own client, and checks the keys each test leaves.
func conformance(t *testing.T, b backend) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := b.newStore(t, Options{})
		inspector := b.inspector(t, s)
		flush(t, inspector)
		return checkedStore{Store: s, inspector: inspector, t: t}
	})
}

// keys returns every key in Redis, sorted.
func keys(t *testing.T, s *Store) []string {
	t.Helper()
	var all []string
	forEachNode(t, s, func(c rueidis.Client) error {
		ks, err := c.Do(context.Background(), c.B().Keys().Pattern("*").Build()).AsStrSlice()
		all = append(all, ks...)
		return err
	})
	slices.Sort(all)
	return slices.Compact(all)
}

// checkConsistent checks that Redis holds exactly the keys of the layout:
// each session whole, with a TTL, and its index entry, in its bucket and
// scored by its deadline; each index entry a session that is there, whose
// entry it is. The tests run long before any TTL ends, so there are no
// stale entries to allow for.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	checkConsistentAt(t, s, time.Time{})
}

// checkConsistentAt is checkConsistent after the store's clock moved to
// now: a session whose deadline passed over expiredMargin before now may
// have lost its index entry (Redis would have dropped its key by then,
// but Redis's clock is not the test's).
func checkConsistentAt(t *testing.T, s *Store, now time.Time) {
	t.Helper()
	sessions := map[session.Hash]bool{}
	index := map[entry]bool{}
	legacy := map[string]bool{}
	for _, k := range keys(t, s) {
		switch {
		case strings.HasPrefix(k, s.prefix+"{") && strings.HasSuffix(k, "}"):
			h, err := session.ParseHash(strings.TrimSuffix(strings.TrimPrefix(k, s.prefix+"{"), "}"))
			if err != nil {
				t.Errorf("key %q: %v", k, err)
				continue
			}
			sessions[h] = true
		case strings.HasPrefix(k, s.prefix+"identity:"):
			// Layout 1's identity sets, left to expire by their TTL.
		case k == s.legacyIndexKey():
			// Layout 1's index, whose sessions the next List, Count or
			// DeleteByIdentity moves into the buckets.
			for m := range zscores(t, s, k) {
				legacy[m] = true
			}
		case strings.HasPrefix(k, s.prefix+bucketInfix):
			for m, score := range zscores(t, s, k) {
				index[entry{bucket: k, member: m, score: score}] = true
			}
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	for h := range sessions {
		key := s.SessionKey(h)
		rec, identity, err := decode(hgetall(t, s, key))
		if err != nil {
			t.Errorf("session %s: %v", h.Short(), err)
			continue
		}
		if ttl := pttl(t, s, key); ttl <= 0 {
			t.Errorf("session %s has no TTL (%s)", h.Short(), ttl)
		}
		if rec.Forwarded() {
			checkForwardRecord(t, s, h, rec, identity)
			continue
		}
		e := s.entryOf(rec, identity, h)
		if !index[e] && !legacy[h.String()] && !rec.ExpiresAt().Before(now.Add(-expiredMargin)) {
			t.Errorf("session %s is not in the index as %q (score %s)", h.Short(), e.bucket, e.score)
		}
		delete(index, e)
	}
	for e := range index {
		h, _ := entryHash(e.member)
		t.Errorf("index entry of %s in %s (score %s) is no session's", h.Short(), e.bucket, e.score)
	}
}

// checkForwardRecord checks a forward record: no values, no identity,
// and a TTL no longer than session.ForwardTTL. (checkConsistent checks
// that it is in no index.)
func checkForwardRecord(t *testing.T, s *Store, h session.Hash, rec *session.Record, identity string) {
	t.Helper()
	if len(rec.Values) != 0 || identity != "" {
		t.Errorf("forward record %s holds %v, identity %q", h.Short(), rec.Values, identity)
	}
	if ttl := pttl(t, s, s.SessionKey(h)); ttl > session.ForwardTTL {
		t.Errorf("forward record %s lives %s, longer than %s", h.Short(), ttl, session.ForwardTTL)
	}
}

func ptr(h session.Hash) *session.Hash { return &h }

func create(t *testing.T, s *Store, name string, now time.Time, to session.Timeouts, values map[string]string) session.Hash {
	t.Helper()
	h := session.HashID(name)
	if _, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(h), Patch: &session.Patch{Set: maps.Clone(values)},
		Identity: "user", Now: now, Timeouts: to, Limits: limits,
	}); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	return h
}

// within checks that got is at most slack short of want and not above it:
// a TTL read back a moment after it was set.
func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	const slack = 5 * time.Second
	if got > want || got < want-slack {
		t.Errorf("%s = %s, want %s (less up to %s)", what, got, want, slack)
	}
}

func TestTTLIsTheDeadline(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	tests := []struct {
		name    string
		to      session.Timeouts
		touchAt time.Duration // 0: no touch
		want    time.Duration // TTL after the last write, from its Now
	}{
		{"idle deadline first", timeouts, 0, 30 * time.Minute},
		{"absolute deadline first", session.Timeouts{Idle: 30 * time.Minute, Absolute: 20 * time.Minute}, 0, 20 * time.Minute},
		{"touch moves the idle deadline", timeouts, 10 * time.Minute, 30 * time.Minute},
		{"touch stops at the absolute deadline", session.Timeouts{Idle: 30 * time.Minute, Absolute: 40 * time.Minute}, 25 * time.Minute, 15 * time.Minute},
		// A deadline in nanoseconds is rounded up to Redis's milliseconds.
		{"rounded up", session.Timeouts{Idle: time.Minute + time.Nanosecond, Absolute: time.Hour}, 0, time.Minute + time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := create(t, s, tc.name, base, tc.to, map[string]string{"user": "alice"})
			if tc.touchAt > 0 {
				if _, err := s.Update(t.Context(), store.Update{
					Hash: h, HasHash: true, Identity: "user", Now: base.Add(tc.touchAt), Timeouts: tc.to, Limits: limits,
				}); err != nil {
					t.Fatal(err)
				}
			}
			// Kept store.ExpiryGrace longer, for requests in flight.
			within(t, "PTTL", pttl(t, s, s.SessionKey(h)), tc.want+store.ExpiryGrace)
			// The index entry is scored by the same deadline.
			bucket, digest := s.identityBucket("user", "alice")
			rec, err := s.Load(t.Context(), h, base.Add(tc.touchAt), tc.to)
			if err != nil {
				t.Fatal(err)
			}
			want := strconv.FormatInt(rec.ExpiresAt().UnixMicro(), 10)
			if got := zscores(t, s, bucket)[string(h[:])+digest]; got != want {
				t.Errorf("index score = %s, want %s", got, want)
			}
		})
	}
}

// TestRotationLeavesForwardRecord: a rotation leaves under the old key
// a forward record and nothing else of the session, and a destroy leaves
// nothing at all.
func TestRotationLeavesForwardRecord(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		tests := []struct {
			name    string
			patch   *session.Patch
			want    map[string]string
			forward bool
		}{
			{"renew", &session.Patch{Renew: true}, map[string]string{"user": "alice", "cart": "3"}, true},
			{"login", &session.Patch{Renew: true, Set: map[string]string{"user": "bob"}}, map[string]string{"user": "bob", "cart": "3"}, true},
			{"destroy and set", &session.Patch{Destroy: true, Set: map[string]string{"flash": "bye"}}, map[string]string{"flash": "bye"}, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				old := create(t, s, "old", base, timeouts, map[string]string{"user": "alice", "cart": "3"})
				renewed := session.HashID("renewed")
				res, err := s.Update(t.Context(), store.Update{
					Hash: old, HasHash: true, NewHash: ptr(renewed), Patch: tc.patch, Realm: "shop",
					Identity: "user", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
				})
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(res.Record.Values, tc.want) || res.Hash != renewed {
					t.Fatalf("result = %+v, want %v at the new hash", res, tc.want)
				}
				e := s.entryOf(res.Record, "user", renewed)
				want := []string{e.bucket, s.SessionKey(renewed)}
				if tc.forward {
					want = append(want, s.SessionKey(old))
				}
				slices.Sort(want)
				if got := keys(t, s); !slices.Equal(got, want) {
					t.Fatalf("keys after the rotation:\n%q\nwant\n%q", got, want)
				}
				if got := zscores(t, s, e.bucket); len(got) != 1 || got[e.member] == "" {
					t.Fatalf("index bucket holds %d entries, want only the new hash's", len(got))
				}
				if tc.forward {
					fields := hgetall(t, s, s.SessionKey(old))
					if fields[fieldNext] != renewed.String() || fields[fieldRealm] != "shop" || fields[fieldVersion] != layoutVersion {
						t.Fatalf("the old key holds %v, want a forward record to %s of realm shop", fields, renewed.Short())
					}
					within(t, "PTTL of the forward record", pttl(t, s, s.SessionKey(old)), session.ForwardTTL)
				}
				checkConsistent(t, s)
			})
		}
	})
}

func TestIdentityIndex(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		a, c := session.HashID("a"), session.HashID("c")
		// members are the hashes indexed under a user.
		members := func(user string) []string {
			t.Helper()
			bucket, digest := s.identityBucket("user", user)
			var m []string
			for member := range zscores(t, s, bucket) {
				if h, ok := entryHash(member); ok && strings.HasSuffix(member, digest) {
					m = append(m, h.String())
				}
			}
			slices.Sort(m)
			return m
		}
		u := func(hash session.Hash, newHash *session.Hash, patch *session.Patch, identity string) {
			t.Helper()
			if _, err := s.Update(t.Context(), store.Update{
				Hash: hash, HasHash: true, NewHash: newHash, Patch: patch,
				Identity: identity, Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
			}); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name             string
			do               func()
			alice, bob, none []string
		}{
			{"create", func() { create(t, s, "a", base, timeouts, map[string]string{"user": "alice"}) },
				[]string{a.String()}, nil, nil},
			{"rename", func() { u(a, nil, &session.Patch{Set: map[string]string{"user": "bob"}}, "user") },
				nil, []string{a.String()}, nil},
			{"other keys leave it", func() { u(a, nil, &session.Patch{Set: map[string]string{"cart": "1"}}, "user") },
				nil, []string{a.String()}, nil},
			{"rotate", func() { u(a, ptr(c), &session.Patch{Renew: true}, "user") },
				nil, []string{c.String()}, nil},
			{"remove the key", func() { u(c, nil, &session.Patch{Delete: []string{"user"}}, "user") },
				nil, nil, nil},
			{"set it again", func() { u(c, nil, &session.Patch{Set: map[string]string{"user": "alice"}}, "user") },
				[]string{c.String()}, nil, nil},
			{"a config without identity drops it", func() { u(c, nil, nil, "") },
				nil, nil, nil},
			{"and one with it adds it back", func() { u(c, nil, nil, "user") },
				[]string{c.String()}, nil, nil},
			{"destroy", func() { u(c, nil, &session.Patch{Destroy: true}, "user") },
				nil, nil, nil},
		}
		for _, step := range steps {
			step.do()
			if got := members("alice"); !slices.Equal(got, step.alice) {
				t.Fatalf("after %s: alice's sessions = %.8q, want %.8q", step.name, got, step.alice)
			}
			if got := members("bob"); !slices.Equal(got, step.bob) {
				t.Fatalf("after %s: bob's sessions = %.8q, want %.8q", step.name, got, step.bob)
			}
			checkConsistent(t, s)
		}
	})
}

// dump returns every key with its type and contents, and whether it has a
// TTL.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range keys(t, s) {
		var v any
		switch typ, _ := do(t, s, "TYPE", k).ToString(); typ {
		case "hash":
			v = hgetall(t, s, k)
		case "zset":
			v = zscores(t, s, k)
		default:
			v = typ
		}
		out[k] = fmt.Sprintf("%v ttl=%v", v, pttl(t, s, k) > 0)
	}
	return out
}

func TestRuleErrorWritesNothing(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		old := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
		before := dump(t, s)
		tests := []struct {
			name    string
			newHash *session.Hash
			patch   *session.Patch
		}{
			{"in place", nil, &session.Patch{Set: map[string]string{"a": "1", "b": "2"}}},
			{"renewal", ptr(session.HashID("b")), &session.Patch{Renew: true, Set: map[string]string{"user": "bob", "a": "1", "b": "2"}}},
			{"destroy and set", ptr(session.HashID("b")), &session.Patch{Destroy: true, Set: map[string]string{"a": "1", "b": "2", "c": "3"}}},
		}
		for _, tc := range tests {
			_, err := s.Update(t.Context(), store.Update{
				Hash: old, HasHash: true, NewHash: tc.newHash, Patch: tc.patch,
				Identity: "user", Now: base.Add(5 * time.Minute), Timeouts: timeouts,
				Limits: session.Limits{Keys: 2},
			})
			var re *session.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("%s: Update = %v, want a RuleError", tc.name, err)
			}
			if after := dump(t, s); !maps.Equal(before, after) {
				t.Fatalf("%s: a refused update changed Redis:\nbefore %q\nafter  %q", tc.name, before, after)
			}
		}
	})
}

// TestWritesArePerKey checks that an update changes only the fields it
// sets: a field written behind the store's back, as by another writer
// between two updates, is still there after an update of other keys.
func TestWritesArePerKey(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice", "cart": "1"})
	// Another writer sets a field, and counts its write as every writer
	// does.
	do(t, s, "HSET", s.SessionKey(h), "other", "kept")
	do(t, s, "HINCRBY", s.SessionKey(h), fieldRev, "1")
	res, err := s.Update(t.Context(), store.Update{
		Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "2"}},
		Identity: "user", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "alice", "cart": "2", "other": "kept"}
	if !maps.Equal(res.Record.Values, want) {
		t.Fatalf("values = %v, want %v", res.Record.Values, want)
	}
}

// TestConcurrentWritesDuringRotation renews a session while other requests
// of the same user set keys through its old ID. Each of them lands in the
// session, before the rotation or after it through the forward record:
// none fails and none is lost.
func TestConcurrentWritesDuringRotation(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		old := create(t, s, "old", base, timeouts, map[string]string{"user": "alice"})
		renewed := session.HashID("renewed")
		const n = 16
		var wg sync.WaitGroup
		start := make(chan struct{})
		ok := make([]bool, n)
		errs := make(chan error, n+1)
		for i := range n {
			wg.Go(func() {
				<-start
				res, err := s.Update(context.Background(), store.Update{
					Hash: old, HasHash: true,
					Patch:    &session.Patch{Set: map[string]string{fmt.Sprintf("k%02d", i): "v"}},
					Identity: "user", Seen: "alice", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
				})
				switch {
				case err != nil:
					errs <- fmt.Errorf("update %d: %w", i, err)
				case res.Followed != (res.Hash == renewed) || !res.Followed && res.Hash != old:
					errs <- fmt.Errorf("update %d: at %s, followed %v", i, res.Hash.Short(), res.Followed)
				default:
					ok[i] = true
				}
			})
		}
		wg.Go(func() {
			<-start
			_, err := s.Update(context.Background(), store.Update{
				Hash: old, HasHash: true, NewHash: ptr(renewed), Patch: &session.Patch{Renew: true},
				Identity: "user", Seen: "alice", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
			})
			if err != nil {
				errs <- fmt.Errorf("renewal: %w", err)
			}
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, err := s.Load(t.Context(), renewed, base.Add(time.Minute), timeouts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if k := fmt.Sprintf("k%02d", i); !ok[i] || got.Values[k] != "v" {
				t.Errorf("update of %s (succeeded: %v): the renewed session lacks it: %v", k, ok[i], got.Values)
			}
		}
		if rec, err := s.Load(t.Context(), old, base.Add(time.Minute), timeouts); err != nil || !rec.Forwarded() || *rec.Successor != renewed {
			t.Errorf("old hash after the renewal: %+v, %v; want a forward record", rec, err)
		}
		checkConsistent(t, s)
	})
}

// TestClusterConcurrentLogins runs concurrent logins (renewals that
// write several slots) on a Cluster: every login goes through, and the
// index holds each once.
func TestClusterConcurrentLogins(t *testing.T) {
	skipClusterIfShort(t)
	t.Parallel()
	s := cluster(t).open(t)
	const n = 16
	for i := range n {
		create(t, s, fmt.Sprint("anonymous", i), base, timeouts, map[string]string{"cart": "1"})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Update(t.Context(), store.Update{
				Hash: session.HashID(fmt.Sprint("anonymous", i)), HasHash: true,
				NewHash:  ptr(session.HashID(fmt.Sprint("login", i))),
				Patch:    &session.Patch{Renew: true, Set: map[string]string{"user": "alice"}},
				Identity: "user", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits,
			})
			if err != nil {
				errs <- fmt.Errorf("login %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkConsistent(t, s)
	if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 16 {
		t.Fatalf("DeleteByIdentity = %d, %v; want 16", n, err)
	}
	checkConsistent(t, s)
}

// TestStaleEntries plays a session key gone behind the store's back
// before its deadline (its index entry stays): List skips the entry,
// DeleteByIdentity drops it, and Delete finds nothing.
func TestStaleEntries(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		live := create(t, s, "live", base, timeouts, map[string]string{"user": "alice"})
		gone := create(t, s, "gone", base, timeouts, map[string]string{"user": "alice"})
		do(t, s, "DEL", s.SessionKey(gone))
		entries, next, err := s.List(t.Context(), "", 10, base)
		if err != nil || len(entries) != 1 || entries[0].Hash != live || next != "" {
			t.Fatalf("List = %d entries, %q, %v; want the live one", len(entries), next, err)
		}
		if err := s.Delete(t.Context(), gone); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Delete of the gone session = %v, want ErrNotFound", err)
		}
		if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
			t.Fatalf("DeleteByIdentity = %d, %v; want 1", n, err)
		}
		got := keys(t, s)
		if b.name == "cluster" {
			// On Cluster the entry of a session not found stays until its
			// bucket drops it (it may be a login's, indexed before it is
			// written: TestDeleteByIdentityRacingALogin); readers skip it.
			if len(got) != 1 || !strings.Contains(got[0], ":ix:") {
				t.Fatalf("keys left: %q; want the index bucket of the gone session's entry", got)
			}
			if listed, err := s.ListByIdentity(t.Context(), "", "user", "alice", base); err != nil || len(listed) != 0 {
				t.Fatalf("ListByIdentity after the revocation = %v, %v; want none", listed, err)
			}
			return
		}
		if len(got) != 0 {
			t.Fatalf("keys left: %q", got)
		}
	})
}

// TestCountIsByDeadline: Count counts the sessions whose deadline is
// after its now, with no session read, so expired ones that Redis has
// not dropped yet do not count.
func TestCountIsByDeadline(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
	create(t, s, "short", base, short, map[string]string{"user": "alice"})
	create(t, s, "long", base, timeouts, map[string]string{"user": "bob"})
	before := commandCalls(t, s)
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 2}, {time.Minute - time.Microsecond, 2}, {time.Minute, 1}, {30 * time.Minute, 0}} {
		if n, err := s.Count(t.Context(), base.Add(tc.at)); err != nil || n != tc.want {
			t.Errorf("Count at +%s = %d, %v; want %d", tc.at, n, err, tc.want)
		}
	}
	if after := commandCalls(t, s); after["hgetall"] != before["hgetall"] || after["hmget"] != before["hmget"] {
		t.Errorf("Count read sessions: %v then %v", before, after)
	}
}

// commandCalls returns how often Redis ran each command.
func commandCalls(t *testing.T, s *Store) map[string]int {
	t.Helper()
	c := mustClient(t, s)
	info, err := c.Do(context.Background(), c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// TestWritesDropExpiredEntries: a write to an index bucket drops the
// entries whose deadline passed over an hour ago, with no sweeper.
func TestWritesDropExpiredEntries(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	bucket, digest := s.identityBucket("user", "alice")
	for i := range 100 {
		h := session.HashID(fmt.Sprint("stale", i))
		do(t, s, "ZADD", bucket, micros(base.Add(-expiredMargin-time.Second)), string(h[:])+digest)
	}
	recent := session.HashID("recent")
	do(t, s, "ZADD", bucket, micros(base.Add(-time.Second)), string(recent[:])+digest)
	create(t, s, "new", base, timeouts, map[string]string{"user": "alice"})
	if got := zscores(t, s, bucket); len(got) != 2 {
		t.Fatalf("bucket holds %d entries after a write, want 2: the new one and the recently expired one", len(got))
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := backend{name: "standalone", addrs: []string{srv.Addr()}, single: true}
	s := b.newStore(t, Options{})
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})

	srv.Stop()
	if _, err := s.Load(t.Context(), h, base, timeouts); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load while Redis is down = %v, want an error that is not ErrNotFound", err)
	}
	_, err := s.Update(t.Context(), store.Update{
		Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "1"}},
		Identity: "user", Now: base, Timeouts: timeouts, Limits: limits,
	})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update while Redis is down = %v, want an error that is not ErrNotFound", err)
	}

	// Back up, empty (it keeps nothing on disk): the same store and client
	// work again.
	srv.Start()
	if _, err := s.Load(t.Context(), h, base, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after Redis came back = %v, want ErrNotFound", err)
	}
	h = create(t, s, "b", base, timeouts, map[string]string{"user": "alice"})
	if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
		t.Fatalf("Load of a session created after the outage: %v", err)
	}
}

// TestSlowServer freezes Redis: past the client's timeouts the store
// reports an error, never ErrNotFound, and once Redis goes on the session
// is there.
func TestSlowServer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// No cache: a cached read would not ask the frozen Redis.
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{srv.Addr()}, ForceSingleClient: true, DisableCache: true, DisableRetry: true,
		ConnWriteTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewWithClient(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	srv.Pause()
	_, err = s.Load(t.Context(), h, base, timeouts)
	srv.Resume()
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load from a frozen Redis = %v, want a timeout error", err)
	}
	if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
		t.Fatalf("Load once Redis went on: %v", err)
	}
}

func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	tests := []struct {
		name   string
		fields []string
	}{
		{"not ours", []string{"user", "alice"}},
		{"newer layout", []string{fieldVersion, "2", "user", "alice"}},
		{"bad time", []string{fieldVersion, "1", fieldCreated, "yesterday", fieldSeen, "0", fieldIdle, "0", fieldAbsolute, "0"}},
		{"missing time", []string{fieldVersion, "1", fieldCreated, "0", fieldSeen, "0", fieldIdle, "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := session.HashID(tc.name)
			do(t, s, "HSET", s.SessionKey(h), tc.fields...)
			if _, err := s.Load(t.Context(), h, base, timeouts); !errors.Is(err, errCorrupt) {
				t.Fatalf("Load = %v, want a corruption error", err)
			}
			if _, err := s.Update(t.Context(), store.Update{Hash: h, HasHash: true, Now: base, Timeouts: timeouts}); !errors.Is(err, errCorrupt) {
				t.Fatalf("Update = %v, want a corruption error", err)
			}
			// Delete is the way out.
			if err := s.Delete(t.Context(), h); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		})
	}
}

func TestListBadArguments(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	if _, _, err := s.List(t.Context(), "not-a-cursor", 10, base); err == nil {
		t.Fatal("List with a bad cursor succeeded")
	}
	if _, _, err := s.List(t.Context(), "", 0, base); err == nil {
		t.Fatal("List with limit 0 succeeded")
	}
}

func TestNewChecksPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"app1:", true},
		{"app{1}:", false},
		{"app}", false},
	}
	for _, tc := range tests {
		s, err := New(func() (rueidis.Client, error) { return nil, errors.New("no redis here") }, Options{KeyPrefix: tc.prefix})
		if (err == nil) != tc.ok {
			t.Errorf("New with prefix %q: %v", tc.prefix, err)
		}
		if err == nil && tc.prefix == "" && s.SessionKey(session.Hash{}) != DefaultKeyPrefix+"{"+strings.Repeat("0", 64)+"}" {
			t.Errorf("default session key = %q", s.SessionKey(session.Hash{}))
		}
	}
}

// TestKeyPrefixesAreSeparate runs two stores with different prefixes on one
// server: neither sees the other's sessions.
func TestKeyPrefixesAreSeparate(t *testing.T) {
	t.Parallel()
	b := standalone(t)
	a := b.open(t)
	other := b.newStore(t, Options{KeyPrefix: "other:"})
	defer other.Close()
	h := create(t, a, "a", base, timeouts, map[string]string{"user": "alice"})
	if _, err := other.Load(t.Context(), h, base, timeouts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load through the other prefix = %v, want ErrNotFound", err)
	}
	if n, err := other.Count(t.Context(), base); err != nil || n != 0 {
		t.Fatalf("Count through the other prefix = %d, %v", n, err)
	}
	if n, err := other.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 0 {
		t.Fatalf("DeleteByIdentity through the other prefix = %d, %v", n, err)
	}
}

// TestWorkloadConsistent runs a random mix of every kind of write, then
// checks the keys' invariants and that Count and List agree.
func TestWorkloadConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: a long random workload in one goroutine, which -race adds nothing to")
	}
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		now := storetest.Workload(t, s, 1000, nil)
		checkConsistentAt(t, s, now)
		storetest.CountMatchesList(t, s, now)
	})
}

// TestClusterFirstCallCreates opens a store on a Cluster whose first call
// creates a session, as the first request after Caddy starts may: it must
// take the Cluster's way of writing, one slot per script, although it has
// not asked the client anything yet.
func TestClusterFirstCallCreates(t *testing.T) {
	skipClusterIfShort(t)
	t.Parallel()
	b := cluster(t)
	s, err := NewWithClient(b.client(t, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("creating a session as the store's first call panicked: %v", r)
			}
		}()
		create(t, s, "first", base, timeouts, map[string]string{"user": "alice"})
	}()
	if _, err := s.Load(t.Context(), session.HashID("first"), base, timeouts); err != nil {
		t.Fatalf("Load of the session created first: %v", err)
	}
	checkConsistent(t, s)
}
