package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
	name      string
	newClient func() goredis.UniversalClient
}

// standalone starts a single redis-server.
func standalone(t *testing.T) backend {
	srv := redistest.Start(t)
	return backend{"standalone", func() goredis.UniversalClient {
		return goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	}}
}

// cluster starts a Redis Cluster of three masters, so that keys of
// different slots live on different nodes.
func cluster(t *testing.T) backend {
	nodes := redistest.StartCluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	return backend{"cluster", func() goredis.UniversalClient {
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	}}
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

// open flushes the backend and opens a store on a new client, closed
// with the test after a check of the store's invariants.
func (b backend) open(t *testing.T) *Store {
	t.Helper()
	s, err := New(b.newClient(), Options{OnIndexError: func(err error) { t.Errorf("index error: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	forEachNode(t, s, func(c *goredis.Client) error { return c.FlushAll(t.Context()).Err() })
	t.Cleanup(func() { s.Close() })
	return s
}

// forEachNode runs fn on the server, or on every master of a cluster.
func forEachNode(t *testing.T, s *Store, fn func(c *goredis.Client) error) {
	t.Helper()
	var err error
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(context.Background(), func(_ context.Context, c *goredis.Client) error { return fn(c) })
	case *goredis.Client:
		err = fn(c)
	default:
		t.Fatalf("unexpected client %T", c)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// checkedStore checks the store's invariants before it closes, so that
// every test of the conformance suite also checks the keys it leaves.
type checkedStore struct {
	*Store
	t *testing.T
}

func (c checkedStore) Close() error {
	checkConsistent(c.t, c.Store)
	return c.Store.Close()
}

func TestConformance(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		storetest.Run(t, func(t *testing.T) store.Store {
			s, err := New(b.newClient(), Options{OnIndexError: func(err error) { t.Errorf("index error: %v", err) }})
			if err != nil {
				t.Fatal(err)
			}
			forEachNode(t, s, func(c *goredis.Client) error { return c.FlushAll(t.Context()).Err() })
			return checkedStore{s, t}
		})
	})
}

// keys returns every key in Redis, sorted.
func keys(t *testing.T, s *Store) []string {
	t.Helper()
	var mu sync.Mutex
	var all []string
	forEachNode(t, s, func(c *goredis.Client) error {
		iter := c.Scan(context.Background(), 0, "*", 100).Iterator()
		for iter.Next(context.Background()) {
			mu.Lock()
			all = append(all, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	slices.Sort(all)
	return slices.Compact(all)
}

// checkConsistent checks that Redis holds exactly the keys of the layout:
// each session whole, with a TTL, in the index of all sessions and in its
// identity set; each index entry and identity set member a session that
// is there and, for a set, owned by the identity; each identity set with
// a TTL past its members'. The tests run long before any TTL ends, so
// there are no stale entries to allow for.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	// Not t.Context(): this runs in cleanups, after it is canceled.
	ctx := context.Background()
	sessions := map[string]session.Hash{}
	identitySets := map[string]bool{}
	for _, k := range keys(t, s) {
		switch {
		case k == s.IndexKey():
		case strings.HasPrefix(k, s.prefix+"{") && strings.HasSuffix(k, "}"):
			h, err := session.ParseHash(strings.TrimSuffix(strings.TrimPrefix(k, s.prefix+"{"), "}"))
			if err != nil {
				t.Errorf("key %q: %v", k, err)
				continue
			}
			sessions[h.String()] = h
		case strings.HasPrefix(k, s.prefix+"identity:"):
			identitySets[k] = true
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	index, err := s.client.ZRange(ctx, s.IndexKey(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range index {
		if _, ok := sessions[m]; !ok {
			t.Errorf("index entry %.16s has no session", m)
		}
	}
	wantMembers := map[string][]string{}
	for hex, h := range sessions {
		key := s.SessionKey(h)
		fields, err := s.client.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		rec, identity, err := decode(fields)
		if err != nil {
			t.Errorf("session %s: %v", h.Short(), err)
			continue
		}
		if ttl := s.client.PTTL(ctx, key).Val(); ttl <= 0 {
			t.Errorf("session %s has no TTL (%s)", h.Short(), ttl)
		}
		if rec.Forwarded() {
			checkForwardRecord(t, s, h, rec, identity, index)
			continue
		}
		if !slices.Contains(index, hex) {
			t.Errorf("session %s is not in the index", h.Short())
		}
		if m := s.memberOf(rec, identity, h); m.set != "" {
			wantMembers[m.set] = append(wantMembers[m.set], hex)
		}
	}
	checkIdentitySets(t, s, identitySets, wantMembers)
}

// checkIdentitySets checks that the identity sets in Redis hold exactly
// wantMembers, and outlive their members.
func checkIdentitySets(t *testing.T, s *Store, identitySets map[string]bool, wantMembers map[string][]string) {
	t.Helper()
	ctx := context.Background()
	for set := range identitySets {
		members, err := s.client.SMembers(ctx, set).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := wantMembers[set]
		slices.Sort(members)
		slices.Sort(want)
		if !slices.Equal(members, want) {
			t.Errorf("identity set %s holds %d sessions, want %d", set, len(members), len(want))
		}
		setTTL := s.client.PTTL(ctx, set).Val()
		for _, m := range members {
			h, _ := session.ParseHash(m)
			if ttl := s.client.PTTL(ctx, s.SessionKey(h)).Val(); setTTL < ttl {
				t.Errorf("identity set %s expires in %s, before its session %s (%s)", set, setTTL, h.Short(), ttl)
			}
		}
		delete(wantMembers, set)
	}
	for set := range wantMembers {
		t.Errorf("identity set %s is missing", set)
	}
}

// checkForwardRecord checks a forward record: no values, no identity, in
// no index, and a TTL no longer than session.ForwardTTL.
func checkForwardRecord(t *testing.T, s *Store, h session.Hash, rec *session.Record, identity string, index []string) {
	t.Helper()
	if len(rec.Values) != 0 || identity != "" {
		t.Errorf("forward record %s holds %v, identity %q", h.Short(), rec.Values, identity)
	}
	if slices.Contains(index, h.String()) {
		t.Errorf("forward record %s is in the index of sessions", h.Short())
	}
	if ttl := s.client.PTTL(context.Background(), s.SessionKey(h)).Val(); ttl > session.ForwardTTL {
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
			within(t, "PTTL", s.client.PTTL(t.Context(), s.SessionKey(h)).Val(), tc.want)
			// The identity set outlives the session's absolute deadline.
			set := s.IdentityKey("user", "alice")
			if got, min := s.client.PTTL(t.Context(), set).Val(), tc.to.Absolute-tc.touchAt; got < min {
				t.Errorf("identity set PTTL = %s, want at least %s", got, min)
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
				want := []string{s.IndexKey(), s.SessionKey(renewed)}
				if tc.forward {
					want = append(want, s.SessionKey(old))
				}
				if u, ok := tc.want["user"]; ok {
					want = append(want, s.IdentityKey("user", u))
				}
				slices.Sort(want)
				if got := keys(t, s); !slices.Equal(got, want) {
					t.Fatalf("keys after the rotation:\n%q\nwant\n%q", got, want)
				}
				if got := s.client.ZRange(t.Context(), s.IndexKey(), 0, -1).Val(); !slices.Equal(got, []string{renewed.String()}) {
					t.Fatalf("index = %v, want only the new hash", got)
				}
				if tc.forward {
					fields := s.client.HGetAll(t.Context(), s.SessionKey(old)).Val()
					if fields[fieldNext] != renewed.String() || fields[fieldRealm] != "shop" || fields[fieldVersion] != layoutVersion {
						t.Fatalf("the old key holds %v, want a forward record to %s of realm shop", fields, renewed.Short())
					}
					within(t, "PTTL of the forward record", s.client.PTTL(t.Context(), s.SessionKey(old)).Val(), session.ForwardTTL)
				}
				checkConsistent(t, s)
			})
		}
	})
}

func TestIdentitySet(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		a, c := session.HashID("a"), session.HashID("c")
		members := func(user string) []string {
			t.Helper()
			m, err := s.client.SMembers(t.Context(), s.IdentityKey("user", user)).Result()
			if err != nil {
				t.Fatal(err)
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
				t.Fatalf("after %s: alice's set = %.8q, want %.8q", step.name, got, step.alice)
			}
			if got := members("bob"); !slices.Equal(got, step.bob) {
				t.Fatalf("after %s: bob's set = %.8q, want %.8q", step.name, got, step.bob)
			}
			checkConsistent(t, s)
		}
	})
}

// dump returns every key with its type and contents, and whether it has a
// TTL.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	for _, k := range keys(t, s) {
		var v any
		switch typ := s.client.Type(ctx, k).Val(); typ {
		case "hash":
			v = s.client.HGetAll(ctx, k).Val()
		case "zset":
			v = s.client.ZRange(ctx, k, 0, -1).Val()
		case "set":
			m := s.client.SMembers(ctx, k).Val()
			slices.Sort(m)
			v = m
		default:
			v = typ
		}
		out[k] = fmt.Sprintf("%v ttl=%v", v, s.client.PTTL(ctx, k).Val() > 0)
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
	if err := s.client.HSet(t.Context(), s.SessionKey(h), "other", "kept").Err(); err != nil {
		t.Fatal(err)
	}
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

// TestClusterHoldsOneConnection runs concurrent logins (renewals that
// write several slots) on a Cluster client capped at one connection per
// node, pipelines included. A write that held a connection (a WATCH)
// while it waited for another could take them all and wait on itself
// until the pool timed out; every login must go through.
func TestClusterHoldsOneConnection(t *testing.T) {
	skipClusterIfShort(t)
	t.Parallel()
	nodes := redistest.StartCluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.Addr())
	}
	s, err := New(goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: addrs, PoolSize: 1, MaxActiveConns: 1, PipelinePoolSize: -1, PoolTimeout: 5 * time.Second,
	}), Options{OnIndexError: func(err error) { t.Errorf("index error: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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
	if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 16 {
		t.Fatalf("DeleteByIdentity = %d, %v; want 16", n, err)
	}
	checkConsistent(t, s)
}

// TestStaleEntries plays Redis expiring a session by its TTL, which leaves
// its index entries behind: every reader skips them and cleans them up.
func TestStaleEntries(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		live := create(t, s, "live", base, timeouts, map[string]string{"user": "alice"})
		gone := create(t, s, "gone", base, timeouts, map[string]string{"user": "alice"})
		if err := s.client.Del(t.Context(), s.SessionKey(gone)).Err(); err != nil {
			t.Fatal(err)
		}
		n, err := s.Count(t.Context(), base)
		if err != nil || n != 1 {
			t.Fatalf("Count = %d, %v; want 1", n, err)
		}
		entries, next, err := s.List(t.Context(), "", 10, base)
		if err != nil || len(entries) != 1 || entries[0].Hash != live || next != "" {
			t.Fatalf("List = %d entries, %q, %v; want the live one", len(entries), next, err)
		}
		if err := s.Delete(t.Context(), gone); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Delete of the expired session = %v, want ErrNotFound", err)
		}
		if n, err := s.DeleteByIdentity(t.Context(), "", "user", "alice"); err != nil || n != 1 {
			t.Fatalf("DeleteByIdentity = %d, %v; want 1", n, err)
		}
		if got := keys(t, s); len(got) != 0 {
			t.Fatalf("keys left: %q", got)
		}
	})
}

// TestCreationCleansIndex checks that session creations remove index
// entries of sessions that Redis has expired, with no sweeper and no List.
func TestCreationCleansIndex(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	const stale = 100
	for i := range stale {
		h := session.HashID(fmt.Sprint("stale", i))
		if err := s.client.ZAdd(t.Context(), s.IndexKey(), goredis.Z{Member: h.String()}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, "new", base, timeouts, map[string]string{"user": "alice"})
	// The probe checks probeSize entries, at most one of them live.
	if n := s.client.ZCard(t.Context(), s.IndexKey()).Val(); n > stale+1-(probeSize-1) {
		t.Fatalf("index holds %d entries after a creation, want at most %d", n, stale+1-(probeSize-1))
	}
	for i := range 200 {
		create(t, s, fmt.Sprint("more", i), base, timeouts, map[string]string{"n": "1"})
	}
	// Each creation removes probeSize times the stale share on average:
	// after 200 creations, few of the 100 are left.
	if n := s.client.ZCard(t.Context(), s.IndexKey()).Val(); n > 201+stale/2 {
		t.Fatalf("index holds %d entries for 201 sessions: the stale ones are not cleaned", n)
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s, err := New(goredis.NewClient(&goredis.Options{Addr: srv.Addr()}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})

	srv.Stop()
	if _, err := s.Load(t.Context(), h, base, timeouts); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load while Redis is down = %v, want an error that is not ErrNotFound", err)
	}
	_, err = s.Update(t.Context(), store.Update{
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
	s, err := New(goredis.NewClient(&goredis.Options{
		Addr: srv.Addr(), ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, MaxRetries: -1,
	}), Options{})
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
		fields []any
	}{
		{"not ours", []any{"user", "alice"}},
		{"newer layout", []any{fieldVersion, "2", "user", "alice"}},
		{"bad time", []any{fieldVersion, "1", fieldCreated, "yesterday", fieldSeen, "0", fieldIdle, "0", fieldAbsolute, "0"}},
		{"missing time", []any{fieldVersion, "1", fieldCreated, "0", fieldSeen, "0", fieldIdle, "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := session.HashID(tc.name)
			if err := s.client.HSet(t.Context(), s.SessionKey(h), tc.fields...).Err(); err != nil {
				t.Fatal(err)
			}
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
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
		s, err := New(c, Options{KeyPrefix: tc.prefix})
		if (err == nil) != tc.ok {
			t.Errorf("New with prefix %q: %v", tc.prefix, err)
		}
		if err == nil && tc.prefix == "" && s.SessionKey(session.Hash{}) != DefaultKeyPrefix+"{"+strings.Repeat("0", 64)+"}" {
			t.Errorf("default session key = %q", s.SessionKey(session.Hash{}))
		}
		c.Close()
	}
}

// TestKeyPrefixesAreSeparate runs two stores with different prefixes on one
// server: neither sees the other's sessions.
func TestKeyPrefixesAreSeparate(t *testing.T) {
	t.Parallel()
	b := standalone(t)
	a := b.open(t)
	other, err := New(b.newClient(), Options{KeyPrefix: "other:"})
	if err != nil {
		t.Fatal(err)
	}
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
		checkConsistent(t, s)
		storetest.CountMatchesList(t, s, now)
	})
}
