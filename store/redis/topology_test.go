package redis

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The tests of this file run the store on each Redis topology it supports
// beyond a single server and a Cluster: Sentinel (with a failover during
// traffic), TLS, and an ACL user with only the commands the store needs.

// topologySuite runs on b what the store must do on every topology: the
// conformance suite, and the cache's core behaviours, which depend on the
// connection's RESP3 client tracking.
func topologySuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"Conformance", conformance},
		{"CacheAnswersRepeatReads", testCacheAnswersRepeatReads},
		{"OwnWritesDropCopyAtOnce", testOwnWritesDropCopyAtOnce},
		{"OtherInstanceWriteInvalidates", testOtherInstanceWriteInvalidates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, b) })
	}
}

// testCacheAnswersRepeatReads checks that the deployment's connections
// cache at all: otherwise the invalidation tests would pass on a store
// that reads Redis every time.
func testCacheAnswersRepeatReads(t *testing.T, b backend) {
	s := b.open(t)
	h := create(t, s, "a", base, timeouts, map[string]string{"user": "alice"})
	for range 2 {
		if _, err := s.Load(t.Context(), h, base, timeouts); err != nil {
			t.Fatal(err)
		}
	}
	if hits, _ := s.cache.Stats(); hits != 1 {
		t.Fatalf("the second of two reads of a session was %d cache hits, want 1", hits)
	}
}

// Passwords of the Sentinel deployments: the sentinels have their own, so
// that a client that gives the data nodes' password to the sentinels, or
// the other way round, is refused.
const (
	nodePassword     = "node secret"
	sentinelPassword = "sentinel secret"
)

// skipSentinelIfShort skips a Sentinel test under -short: the sentinels
// take seconds to find each other, and a failover 10 to 20.
func skipSentinelIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: Redis Sentinel takes seconds to start and to fail over")
	}
}

// startSentinel starts a master, a replica and three sentinels, the
// sentinels and the data nodes with passwords of their own, and returns
// the deployment and a backend whose clients find the master through the
// sentinels. Its stores wait for the replica (WaitReplicas: 1), so the
// conformance suite runs WAIT too.
func startSentinel(t *testing.T) (*redistest.Sentinel, backend) {
	t.Helper()
	sn := redistest.StartSentinel(t, redistest.SentinelOptions{
		MasterName: "sessions", Password: nodePassword, SentinelPassword: sentinelPassword,
	})
	return sn, backend{
		name:  "sentinel",
		addrs: sn.SentinelAddrs(),
		configure: func(o *rueidis.ClientOption) {
			o.Sentinel = rueidis.SentinelOption{
				MasterSet: sn.MasterName(), Password: sentinelPassword,
				// rueidis moves to a new master when a sentinel announces
				// it (+switch-master), and with this also when it asks
				// them every second: one missed announcement would leave
				// it on the old master for good.
				TopologyRefreshInterval: time.Second,
			}
			o.Password = nodePassword
		},
		waitReplicas: 1,
	}
}

func TestSentinel(t *testing.T) {
	skipSentinelIfShort(t)
	t.Parallel()
	_, b := startSentinel(t)
	topologySuite(t, b)
}

// TestTLS runs the store over TLS, to a server that asks for no client
// certificate and to one that requires one; a client without a
// certificate is refused by the latter.
func TestTLS(t *testing.T) {
	t.Parallel()
	for _, requireCert := range []bool{false, true} {
		t.Run(map[bool]string{false: "server certificate", true: "client certificate required"}[requireCert], func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartTLS(t, redistest.TLSOptions{RequireClientCert: requireCert})
			b := backend{name: "tls", addrs: []string{srv.Addr()}, single: true, configure: func(o *rueidis.ClientOption) {
				o.TLSConfig = srv.ClientTLSConfig()
			}}
			topologySuite(t, b)
			if requireCert {
				noCert := srv.ClientTLSConfig()
				noCert.Certificates = nil
				o := b.option(nil)
				o.TLSConfig = noCert
				if c, err := rueidis.NewClient(o); err == nil {
					c.Close()
					t.Fatal("a client without a certificate connected to a server that requires one")
				}
			}
		})
	}
}

// aclCommands are the commands the store's Redis user needs, and no more:
// with the key pattern ~<prefix>* and these, and -@all for the rest, the
// conformance suite and the cache tests pass on a single server (with a
// replica, for WAIT), Sentinel and Cluster, and without any one of them
// something fails (TestACL's EachCommandNeeded). The README documents
// this list; keep them the same.
//
// Not on it, as the store gets by without them:
//   - HELLO and AUTH: Redis lets a connection run them before it logs in,
//     whoever it logs in as, and rueidis logs in with HELLO 3 AUTH (the
//     tests' servers have their default user off).
//   - PING, ECHO and CLIENT SETINFO (Redis 7.2 and later): rueidis
//     ignores a refusal of each; a refused keep-alive PING still shows
//     that the connection is alive, and ECHO is what rueidis sends before
//     a cached read where tracking is not opt-in. Allowing them keeps
//     NOPERM entries out of ACL LOG.
//   - CLIENT CACHING: tracking is on for every read (OPTOUT, see
//     Cache.Configure), so no read is opted in.
//   - SELECT: only for a database other than 0.
//   - MULTI, EXEC and PTTL: rueidis wraps a cached read in them to learn the
//     key's TTL, but the store caches by its own TTL (ToStaticTTL).
//   - CLUSTER SHARDS: rueidis asks it instead of CLUSTER SLOTS from Redis 8
//     on; allow it there.
var aclCommands = []string{
	// Session reads, and the script every write is: EVALSHA, and EVAL
	// when the server does not know the script yet.
	"hgetall", "evalsha", "eval",
	// The script's own commands: Redis checks them against the user too.
	"hget", "del", "hset", "hdel", "hincrby", "pexpire", "zadd", "zrem", "zremrangebyscore",
	// Count, List and DeleteByIdentity read the index.
	"zcount", "zrange",
	// wait_replicas.
	"wait",
	// The cache: RESP3 tracking, on for every read of the connection.
	"client|tracking",
	// Sentinel: rueidis checks that the node the sentinels name is master.
	"role",
	// Cluster: the map of slots to nodes.
	"cluster|slots",
}

// aclRules are the ACL rules of a user that may run commands on the keys
// that start with prefix, and nothing else.
func aclRules(prefix string, commands []string) []string {
	rules := []string{"resetkeys", "~" + prefix + "*", "resetchannels", "-@all"}
	for _, c := range commands {
		rules = append(rules, "+"+c)
	}
	return rules
}

// without returns commands less the one named.
func without(commands []string, name string) []string {
	var out []string
	for _, c := range commands {
		if c != name {
			out = append(out, c)
		}
	}
	return out
}

// The users of the ACL tests: the store's, and an admin for the tests'
// flushes and checks.
const (
	aclPassword   = "store secret"
	adminUser     = "admin"
	adminPassword = "admin secret"
)

// aclDeployment is a running deployment to which users can be added.
type aclDeployment struct {
	// servers are the data nodes: ACL users are neither replicated nor
	// shared by a cluster, so each gets them.
	servers []*redistest.Server
	// as returns the deployment seen by user.
	as func(user, password string) backend
	// admin is the deployment seen by a user that may run every command.
	admin backend
}

// user adds a user that may run commands on the store's keys, and returns
// the deployment as that user, with an admin.
func (d aclDeployment) user(t *testing.T, name string, commands []string) backend {
	t.Helper()
	for _, srv := range d.servers {
		srv.AddUser(t, name, aclPassword, aclRules(DefaultKeyPrefix, commands)...)
	}
	b := d.as(name, aclPassword)
	b.admin = &d.admin
	return b
}

// credentials returns a configure function that runs then, if set, and
// logs in as user with password.
func credentials(then func(o *rueidis.ClientOption), user, password string) func(o *rueidis.ClientOption) {
	return func(o *rueidis.ClientOption) {
		if then != nil {
			then(o)
		}
		o.Username, o.Password = user, password
	}
}

// lockDown adds the admin user to srv, has Do log in as it, and turns the
// default user off, as on a server where ACLs matter: the store's
// connections start unauthenticated and log in as its user.
func lockDown(t *testing.T, srv *redistest.Server) {
	t.Helper()
	srv.AddUser(t, adminUser, adminPassword, "~*", "&*", "+@all")
	srv.SetAuth(adminUser, adminPassword)
	if reply, err := srv.Do("ACL", "SETUSER", "default", "off"); err != nil || reply != "+OK" {
		t.Fatalf("turning the default user off: %q, %v", reply, err)
	}
}

// aclStandalone starts a master with a replica, whose default users are
// off.
func aclStandalone(t *testing.T) aclDeployment {
	t.Helper()
	// A master waits 5 seconds by default for more replicas to share a
	// diskless sync with: this one has one.
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	lockDown(t, master)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()),
		"--masteruser", adminUser, "--masterauth", adminPassword)
	eventually(t, "the replica to sync", func() bool {
		info, err := replica.Do("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	as := func(user, password string) backend {
		return backend{name: "standalone", addrs: []string{master.Addr()}, single: true,
			configure: credentials(nil, user, password), waitReplicas: 1}
	}
	return aclDeployment{servers: []*redistest.Server{master}, as: as, admin: as(adminUser, adminPassword)}
}

// aclCluster starts a Redis Cluster of three masters, whose default users
// are off.
func aclCluster(t *testing.T) aclDeployment {
	t.Helper()
	nodes := redistest.StartCluster(t, 3)
	var addrs []string
	for _, n := range nodes {
		lockDown(t, n)
		addrs = append(addrs, n.Addr())
	}
	as := func(user, password string) backend {
		return backend{name: "cluster", addrs: addrs, configure: credentials(nil, user, password)}
	}
	return aclDeployment{servers: nodes, as: as, admin: as(adminUser, adminPassword)}
}

// aclSentinel starts a Sentinel deployment. Its data nodes keep their
// default user, with the node password, for the sentinels and the
// replica; the store logs in as its own user.
func aclSentinel(t *testing.T) aclDeployment {
	t.Helper()
	sn, b := startSentinel(t)
	as := func(user, password string) backend {
		u := b
		u.configure = credentials(b.configure, user, password)
		return u
	}
	return aclDeployment{servers: []*redistest.Server{sn.Master(), sn.Replica()}, as: as, admin: b}
}

// aclTopologies are the deployments of the ACL tests, and whether each is
// quick enough for -short.
var aclTopologies = []struct {
	name  string
	short bool
	start func(t *testing.T) aclDeployment
}{
	{"standalone", true, aclStandalone},
	{"cluster", false, aclCluster},
	{"sentinel", false, aclSentinel},
}

// aclOnlyOn names the topologies of aclTopologies that need a command,
// for those not all of them need.
var aclOnlyOn = map[string][]string{
	"wait":          {"standalone", "sentinel"}, // those with a replica to wait for
	"role":          {"sentinel"},
	"cluster|slots": {"cluster"},
}

// TestACL runs the store as a user that may run only aclCommands on its
// keys, and shows that each of them is needed: a user without it fails
// aclProbe.
func TestACL(t *testing.T) {
	t.Parallel()
	for _, tc := range aclTopologies {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.short && testing.Short() {
				t.Skipf("skipped under -short: %s takes seconds to start", tc.name)
			}
			t.Parallel()
			d := tc.start(t)
			topologySuite(t, d.user(t, "caddy-session", aclCommands))
			t.Run("EachCommandNeeded", func(t *testing.T) {
				if err := aclProbe(t, d.user(t, "probe", aclCommands)); err != nil {
					t.Fatalf("with every command of aclCommands: %v", err)
				}
				for _, c := range aclCommands {
					if only := aclOnlyOn[c]; only != nil && !slices.Contains(only, tc.name) {
						continue
					}
					err := aclProbe(t, d.user(t, "without-"+strings.ReplaceAll(c, "|", "-"), without(aclCommands, c)))
					if err == nil {
						t.Errorf("the store got by without %s", c)
						continue
					}
					t.Logf("without %s: %v", c, err)
				}
			})
		})
	}
}

// aclProbe makes, through two stores on b, one call of each kind the
// store makes, and returns the first error: one of a command b's user
// may not run, or that the second store's cache missed a write of the
// first. Redis forgets the store's script first, so that the first write
// sends it with EVAL.
func aclProbe(t *testing.T, b backend) error {
	t.Helper()
	// An index step of its own (on Cluster) reports its failure here
	// rather than as the call's.
	var indexErr error
	onIndex := func(err error) { indexErr = cmp.Or(indexErr, err) }
	var stores [2]*Store
	for i := range stores {
		cache := NewCache(1 << 20)
		client, err := rueidis.NewClient(b.option(cache))
		if err != nil {
			return fmt.Errorf("connecting: %w", err)
		}
		s, err := NewWithClient(client, Options{Cache: cache, WaitReplicas: b.waitReplicas, OnIndexError: onIndex})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mustClient(t, s) // as newStore does: see TestClusterFirstCallCreates
		stores[i] = s
	}
	s, other := stores[0], stores[1]
	forEachNode(t, b.inspector(t, s), func(c rueidis.Client) error {
		return c.Do(t.Context(), c.B().Arbitrary("SCRIPT", "FLUSH").Build()).Error()
	})
	ctx := t.Context()
	h, renewed := session.HashID("probe"), session.HashID("probe renewed")
	update := func(u store.Update) error {
		u.Identity, u.Now, u.Timeouts, u.Limits = "user", base, timeouts, limits
		_, err := s.Update(ctx, u)
		return err
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			return update(store.Update{NewHash: &h, Patch: &session.Patch{Set: map[string]string{"user": "alice", "gone": "1"}}})
		}},
		{"read", func() error {
			_, err := s.Load(ctx, h, base, timeouts)
			return err
		}},
		{"read through the other store", func() error {
			_, err := other.Load(ctx, h, base, timeouts)
			return err
		}},
		{"update in place", func() error {
			return update(store.Update{Hash: h, HasHash: true, Patch: &session.Patch{Set: map[string]string{"cart": "1"}, Delete: []string{"gone"}}})
		}},
		{"the other store sees the update", func() error {
			deadline := time.Now().Add(2 * time.Second)
			for {
				rec, err := other.Load(ctx, h, base, timeouts)
				if err == nil && rec.Values["cart"] == "1" {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("still %v, %v after 2s", rec, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}},
		{"rotate", func() error {
			return update(store.Update{Hash: h, HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true}, Seen: "alice"})
		}},
		{"count", func() error {
			_, err := s.Count(ctx, base)
			return err
		}},
		{"list", func() error {
			_, _, err := s.List(ctx, "", 10, base)
			return err
		}},
		{"revoke", func() error {
			n, err := s.DeleteByIdentity(ctx, "", "user", "alice")
			if err == nil && n != 1 {
				err = fmt.Errorf("revoked %d sessions, want 1", n)
			}
			return err
		}},
	}
	for _, step := range steps {
		if err := cmp.Or(step.do(), indexErr); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return nil
}

// TestACLWithoutClientTracking: a user that may not turn tracking on gets
// no client with a cache, with an error that says so (the Caddy glue then
// connects with DisableCache), and the store works uncached.
func TestACLWithoutClientTracking(t *testing.T) {
	t.Parallel()
	d := aclStandalone(t)
	b := d.user(t, "no-tracking", without(aclCommands, "client|tracking"))
	c, err := rueidis.NewClient(b.option(NewCache(1 << 20)))
	if err == nil {
		c.Close()
		t.Fatal("a client with a cache connected as a user that may not turn tracking on")
	}
	if !errors.Is(err, rueidis.ErrNoCache) {
		t.Fatalf("connecting with a cache: %v, want rueidis.ErrNoCache", err)
	}
	uncached := b
	uncached.configure = func(o *rueidis.ClientOption) {
		b.configure(o)
		o.DisableCache, o.NewCacheStoreFn = true, nil
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"Conformance", conformance},
		{"OwnWritesDropCopyAtOnce", testOwnWritesDropCopyAtOnce},
		{"OtherInstanceWriteInvalidates", testOtherInstanceWriteInvalidates},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, uncached) })
	}
}

// TestACLWithoutClientCaching: a user that may turn tracking on but not
// opt a read into it (CLIENT CACHING YES) has a cache that another
// instance's writes, revocations among them, reach all the same. Under
// rueidis's default opt-in tracking they would not: rueidis sends CLIENT
// CACHING YES before each cached read and ignores its refusal, so Redis
// would track none of the reads; Cache.Configure turns tracking on for
// every read instead.
func TestACLWithoutClientCaching(t *testing.T) {
	t.Parallel()
	d := aclStandalone(t)
	testOtherInstanceWriteInvalidates(t, d.user(t, "no-caching", without(aclCommands, "client|caching")))
}

// write is one write of the value of "n" to a session, as a worker of
// TestSentinelFailoverDuringTraffic saw it.
type write struct {
	n string
	// acked: the store acknowledged the write. durable: and no failover
	// can undo it, as the replica had it (the store waited for it) or it
	// is on the master the failover moves to.
	acked, durable bool
}

// tracked is what a worker of TestSentinelFailoverDuringTraffic knows of
// one of its sessions: what it asked the stores to do, and what they
// acknowledged. Only its worker touches it until the workers are done.
type tracked struct {
	name, user string // user is the value of "user": the worker's, never another's
	hash       session.Hash
	home       int // the store that writes it and reads its own writes back
	// before: created, and acknowledged with the replica's copy, before
	// the failover started.
	before bool
	// known: whether the session exists is certain, and live says which.
	// A failed login or logout leaves it uncertain.
	known, live bool
	writes      []write
}

func newTracked(name, user string, home int, before bool) *tracked {
	return &tracked{name: name, user: user, hash: session.HashID(name), home: home, before: before}
}

// wrote records a write of n that returned err.
func (s *tracked) wrote(n string, err error, durable bool) {
	s.writes = append(s.writes, write{n: n, acked: err == nil, durable: err == nil && durable})
}

// had reports whether n was written to s; with sinceDurable, whether it
// was written since the last durable write: an older value is one the
// session lost.
func (s *tracked) had(n string, sinceDurable bool) bool {
	for i := len(s.writes) - 1; i >= 0; i-- {
		if s.writes[i].n == n {
			return true
		}
		if sinceDurable && s.writes[i].durable {
			return false
		}
	}
	return false
}

// undone reports whether a read of n shows that the session lost its
// last acknowledged write: n is neither its value nor that of a write
// that failed since.
func (s *tracked) undone(n string) bool {
	for i := len(s.writes) - 1; i >= 0; i-- {
		switch w := s.writes[i]; {
		case w.acked:
			return w.n != n
		case w.n == n:
			return false
		}
	}
	return false
}

// checkValues returns what is wrong with a record read of s: values of
// another session, or a value of "n" that s never had or, with
// sinceDurable, one that a durable write replaced.
func (s *tracked) checkValues(rec *session.Record, sinceDurable bool) error {
	n := rec.Values["n"]
	switch {
	case rec.Values["user"] != s.user || len(rec.Values) != 2 || !s.had(n, false):
		return fmt.Errorf("session %s holds %v, which it never had", s.name, rec.Values)
	case sinceDurable && !s.had(n, true):
		return fmt.Errorf("session %s holds n=%s, older than a write that no failover can undo: %v", s.name, n, s.writes)
	}
	return nil
}

// checkRead returns what is wrong with a read of s through the store
// numbered by. An error is always an answer. The session's own store
// reads back what it wrote, as far as the failover did not undo it; the
// other store may lag (its cache, or its connection to the old master),
// so any value s had is right there.
func (s *tracked) checkRead(by int, rec *session.Record, err error) error {
	home := by == s.home
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Both masters have the sessions acknowledged before the
		// failover; the other store may not see yet one created on the
		// new master.
		if s.known && s.live && (home || s.before) {
			return fmt.Errorf("session %s (logged in before the failover: %v) not found through store %d", s.name, s.before, by)
		}
	case err != nil:
	case home && s.known && !s.live:
		return fmt.Errorf("session %s found through its store after its logout was acknowledged", s.name)
	default:
		return s.checkValues(rec, home)
	}
	return nil
}

// TestSentinelFailoverDuringTraffic fails the master over while workers
// log in, read, write and log out through two stores on clients of their
// own, as two Caddy instances. The stores wait for the replica
// (WaitReplicas: 1) when a session starts or ends, so every login before
// the failover, and every login and logout acknowledged during it,
// survives it. Every call either succeeds or fails: it never answers
// ErrNotFound for a session that exists, nor values a session never had
// or another session's, nor, through the store that wrote it, a value
// older than its last acknowledged write, but for what the failover
// undid (below). Afterwards both stores work again, on the new master,
// which holds every session it should with its values.
//
// A write acknowledged without a wait for the replica is lost if the
// replica did not have it when it was promoted: the old master, made the
// new one's replica, drops its data for the new master's. The store does
// not wait for the replica when it writes a session in place (see
// Options.WaitReplicas), so such writes, acknowledged by the old master
// after the replica stopped following it and before the store's client
// moved to the new master, are undone: the test allows a read to return
// a value older than the last acknowledged one only when every write
// acknowledged since was of that kind. Without WaitReplicas the same
// goes for logins and logouts: a failover could lose a login, or bring
// back a session that was logged out; with it such a write fails
// instead, having reached no replica in time, and the test counts it as
// one that may or may not have happened.
func TestSentinelFailoverDuringTraffic(t *testing.T) {
	skipSentinelIfShort(t)
	t.Parallel()
	sn, b := startSentinel(t)
	oldMaster := sn.Master()
	// A login or logout waits at most 200ms for the replica, which
	// answers in a millisecond while it follows the master: one that
	// cannot reach it fails sooner, and leaves its worker more calls in
	// the moments the failover is about.
	opts := Options{WaitTimeout: 200 * time.Millisecond}
	stores := [2]*Store{b.newStore(t, opts), b.newStore(t, opts)}
	flush(t, stores[0])
	// master returns the address of the master st's client talks to.
	master := func(st *Store) string {
		client, err := st.Client()
		if err != nil {
			return ""
		}
		for addr := range client.Nodes() {
			return addr
		}
		return ""
	}

	const workers, sessionsBefore = 8, 8
	ctx := t.Context()
	login := func(s *tracked) error {
		n := s.name + ":0"
		_, err := stores[s.home].Update(ctx, store.Update{
			NewHash: &s.hash, Patch: &session.Patch{Set: map[string]string{"user": s.user, "n": n}},
			Identity: "user", Now: base, Timeouts: timeouts, Limits: limits,
		})
		s.known, s.live = err == nil, true
		s.wrote(n, err, true)
		return err
	}
	sessions := make([][]*tracked, workers)
	for w := range workers {
		for i := range sessionsBefore {
			s := newTracked(fmt.Sprintf("w%d-before-%d", w, i), fmt.Sprint("w", w), i%2, true)
			if err := login(s); err != nil {
				t.Fatalf("login of %s before the failover: %v", s.name, err)
			}
			sessions[w] = append(sessions[w], s)
		}
	}

	var mu sync.Mutex
	var violations []string
	violation := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		violations = append(violations, err.Error())
	}
	// Counts by kind of call (login, write, read, logout) and outcome
	// (success, not found, other error), and of reads through the
	// session's own store that found a write undone.
	var calls [4][3]atomic.Int64
	var undone atomic.Int64
	// failing is set when the failover starts: a write acknowledged by
	// the old master from then on may be undone, unless the replica
	// acknowledged it too. (One acknowledged just before is on the
	// replica when it is promoted: the replica follows a fraction of a
	// millisecond behind, and a sentinel promotes it rounds of a tenth
	// of a second after SENTINEL FAILOVER.)
	var failing atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// A worker paces itself, to leave the sentinels the CPU they
			// need to fail over on time.
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			mine := sessions[w]
			defer func() { sessions[w] = mine }()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				s := mine[i%len(mine)]
				var kind int
				var err error
				var exists bool // the call is about a session known to exist
				switch i % 20 {
				case 0, 10: // a new login
					kind = 0
					s = newTracked(fmt.Sprintf("w%d-%d", w, i), fmt.Sprint("w", w), i/10%2, false)
					err = login(s)
					mine = append(mine, s)
				case 5: // a logout, of the oldest session of the failover still live
					kind, exists = 3, true
					s = nil
					for _, o := range mine {
						if !o.before && o.known && o.live {
							s = o
							break
						}
					}
					if s == nil {
						continue
					}
					if err = stores[s.home].Delete(ctx, s.hash); err == nil {
						s.live = false
					} else {
						s.known = false
					}
				case 1, 4, 7, 11, 14, 17: // a write, in place
					kind, exists = 1, true
					if !s.known || !s.live {
						continue
					}
					n := fmt.Sprintf("%s:%d", s.name, i)
					// The client moves from the old master to the new one
					// once, so one that is on the new master before the
					// call sends it there.
					durable := !failing.Load() || master(stores[s.home]) != oldMaster.Addr()
					_, err = stores[s.home].Update(ctx, store.Update{
						Hash: s.hash, HasHash: true, Patch: &session.Patch{Set: map[string]string{"n": n}},
						Identity: "user", Now: base, Timeouts: timeouts, Limits: limits,
					})
					s.wrote(n, err, durable)
				default: // a read, through either store
					kind = 2
					by := i % 2
					var rec *session.Record
					rec, err = stores[by].Load(ctx, s.hash, base, timeouts)
					if v := s.checkRead(by, rec, err); v != nil {
						violation(v)
					} else if err == nil && by == s.home && s.known && s.undone(rec.Values["n"]) {
						undone.Add(1)
					}
				}
				switch {
				case err == nil:
					calls[kind][0].Add(1)
				case errors.Is(err, store.ErrNotFound):
					calls[kind][1].Add(1)
					if exists {
						violation(fmt.Errorf("%s of session %s: not found", []string{"login", "write", "read", "logout"}[kind], s.name))
					}
				default:
					calls[kind][2].Add(1)
				}
			}
		})
	}
	start := time.Now()
	failing.Store(true)
	sn.Failover(t)
	t.Logf("failed over in %s", time.Since(start))
	close(done)
	wg.Wait()
	for kind, name := range []string{"logins", "writes", "reads", "logouts"} {
		t.Logf("%s: %d succeeded, %d not found, %d failed", name, calls[kind][0].Load(), calls[kind][1].Load(), calls[kind][2].Load())
	}
	t.Logf("reads through a session's own store that found its last acknowledged write undone: %d", undone.Load())
	for i, v := range violations {
		if i == 20 {
			t.Errorf("and %d more", len(violations)-i)
			break
		}
		t.Error(v)
	}

	newMaster := sn.Master()
	if newMaster == oldMaster {
		t.Fatal("the master is the same after the failover")
	}
	// Both stores work again, on the new master: a login through each is
	// read back, and a write of each live session too, through the other
	// store as soon as Redis has told its cache.
	for i, st := range stores {
		eventually(t, fmt.Sprintf("store %d logs in on the new master", i), func() bool {
			s := newTracked(fmt.Sprint("after-", i), "after", i, false)
			if master(st) != newMaster.Addr() || login(s) != nil {
				return false
			}
			rec, err := st.Load(ctx, s.hash, base, timeouts)
			return err == nil && s.checkValues(rec, true) == nil
		})
	}
	for _, mine := range sessions {
		for _, s := range mine {
			if !s.known || !s.live {
				continue
			}
			n := s.name + ":after"
			_, err := stores[s.home].Update(ctx, store.Update{
				Hash: s.hash, HasHash: true, Patch: &session.Patch{Set: map[string]string{"n": n}},
				Identity: "user", Now: base, Timeouts: timeouts, Limits: limits,
			})
			if err != nil {
				t.Fatalf("write of %s after the failover: %v", s.name, err)
			}
			s.wrote(n, nil, true)
			if rec, err := stores[s.home].Load(ctx, s.hash, base, timeouts); err != nil || rec.Values["n"] != n {
				t.Fatalf("read of %s after its write after the failover: %v, %v", s.name, rec, err)
			}
			eventually(t, "the other store reads "+s.name+" after the failover", func() bool {
				rec, err := stores[1-s.home].Load(ctx, s.hash, base, timeouts)
				return err == nil && rec.Values["n"] == n
			})
		}
	}
	// The new master holds every session whose login was acknowledged,
	// and none whose logout was.
	direct := backend{name: "new master", addrs: []string{newMaster.Addr()}, single: true, configure: func(o *rueidis.ClientOption) {
		o.Password = nodePassword
	}}
	onMaster := direct.newStore(t, Options{})
	for _, mine := range sessions {
		for _, s := range mine {
			rec, err := onMaster.Load(ctx, s.hash, base, timeouts)
			switch {
			case errors.Is(err, store.ErrNotFound):
				if s.known && s.live {
					t.Errorf("session %s (logged in before the failover: %v) is not on the new master", s.name, s.before)
				}
			case err != nil:
				t.Errorf("reading session %s on the new master: %v", s.name, err)
			case s.known && !s.live:
				t.Errorf("session %s is on the new master after its logout was acknowledged", s.name)
			default:
				if err := s.checkValues(rec, s.known); err != nil {
					t.Errorf("on the new master: %v", err)
				}
			}
		}
	}
	checkConsistent(t, onMaster)
}
