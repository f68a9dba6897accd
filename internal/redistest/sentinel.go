package redistest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sentinelTimeout bounds how long the sentinels may take to find each
// other and the replica, and a failover to complete. The old master
// rejoins as a replica only when a sentinel has seen it claim to be master
// for some 8 seconds and has asked it again (every 1 to 10 seconds), so a
// failover takes 10 to 20 seconds; the bound leaves room for a busy
// machine.
const sentinelTimeout = 60 * time.Second

// pollInterval paces the readiness polls of the sentinel helpers, each of
// which opens several connections.
const pollInterval = 50 * time.Millisecond

// SentinelOptions are the options of StartSentinel.
type SentinelOptions struct {
	// MasterName is the name the sentinels know the master by; "mymaster"
	// if empty.
	MasterName string
	// Password, if set, is required by the master and the replica
	// (requirepass); the replica gives it to replicate (masterauth) and
	// the sentinels to watch them (sentinel auth-pass).
	Password string
	// SentinelPassword, if set, is required by the sentinels themselves
	// (requirepass), and they give it to each other (sentinel
	// sentinel-pass).
	SentinelPassword string
	// SentinelUser, if set with SentinelPassword, is an ACL user of the
	// sentinels that may do anything, and their default user is off:
	// clients of the sentinels must log in as SentinelUser, as the
	// sentinels do to each other (sentinel sentinel-user).
	SentinelUser string
}

// Sentinel is a master, a replica and three sentinels watching them, with a
// quorum of two.
type Sentinel struct {
	t         testing.TB
	name      string
	nodes     []*Server // the master and the replica as started
	sentinels []*Server
}

// StartSentinel starts a master, a replica of it and three sentinels
// (redis-server <config> --sentinel) that watch it, each on its own free
// loopback port, and waits until the replica is in sync and every sentinel
// knows the master, the replica and the other two sentinels, all answering
// it. All are stopped when the test ends. It takes 2 to 3 seconds, as the
// sentinels announce themselves to each other every 2 seconds.
//
// The sentinels find a master down after a second without an answer, so a
// test that stops the master sees it fail over within seconds. A node
// started again after Stop starts as it first did, as master or as replica
// of the first master, and the sentinels set it right.
func StartSentinel(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	if opts.SentinelUser != "" && opts.SentinelPassword == "" {
		t.Fatal("redistest: SentinelOptions.SentinelUser needs a SentinelPassword")
	}
	name := opts.MasterName
	if name == "" {
		name = "mymaster"
	}
	var auth []string
	if opts.Password != "" {
		auth = []string{"--requirepass", opts.Password, "--masterauth", opts.Password}
	}
	node := func(label string, extra ...string) *Server {
		t.Helper()
		s, err := launch(t, spec{label: label, password: opts.Password, extra: slices.Concat(
			// A master waits 5 seconds by default for more replicas to
			// share a diskless sync with: this one has one replica.
			[]string{"--repl-diskless-sync-delay", "0"}, auth, extra)})
		if err != nil {
			t.Fatalf("starting %s: %v\n%s", label, err, s.output())
		}
		return s
	}
	master := node("redis-server (started as master)")
	replica := node("redis-server (started as replica)", "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	sn := &Sentinel{t: t, name: name, nodes: []*Server{master, replica}}
	// Sentinels find replicas in the master's INFO, which they ask for when
	// they connect and then every 10 seconds: start them once the replica
	// shows there.
	poll(t, "the replica to sync", func() error {
		return replicating(replica, master)
	})

	q := confQuote(name)
	conf := []string{
		"sentinel monitor " + q + " 127.0.0.1 " + strconv.Itoa(master.port) + " 2",
		"sentinel down-after-milliseconds " + q + " 1000",
		"sentinel failover-timeout " + q + " 5000",
		"sentinel parallel-syncs " + q + " 1",
	}
	if opts.Password != "" {
		conf = append(conf, "sentinel auth-pass "+q+" "+confQuote(opts.Password))
	}
	switch {
	case opts.SentinelUser != "":
		conf = append(conf,
			"user default off",
			"user "+confQuote(opts.SentinelUser)+" on "+confQuote(">"+opts.SentinelPassword)+" ~* &* +@all",
			"sentinel sentinel-user "+confQuote(opts.SentinelUser),
			"sentinel sentinel-pass "+confQuote(opts.SentinelPassword),
		)
	case opts.SentinelPassword != "":
		conf = append(conf,
			"requirepass "+confQuote(opts.SentinelPassword),
			"sentinel sentinel-pass "+confQuote(opts.SentinelPassword),
		)
	}
	for range 3 {
		s, err := launch(t, spec{
			label: "redis sentinel",
			conf:  strings.Join(conf, "\n") + "\n",
			user:  opts.SentinelUser, password: opts.SentinelPassword,
			extra: []string{"--sentinel"},
		})
		if err != nil {
			t.Fatalf("starting a Redis sentinel: %v\n%s", err, s.output())
		}
		sn.sentinels = append(sn.sentinels, s)
	}
	poll(t, "the sentinels to know the master, the replica and each other", func() error {
		for _, s := range sn.sentinels {
			if err := sn.view(s, master, replica, true); err != nil {
				return err
			}
			if err := sn.peers(s); err != nil {
				return err
			}
		}
		return nil
	})
	return sn
}

// MasterName returns the name the sentinels know the master by.
func (sn *Sentinel) MasterName() string { return sn.name }

// SentinelAddrs returns the sentinels' addresses, 127.0.0.1:<port>.
func (sn *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(sn.sentinels))
	for i, s := range sn.sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Sentinels returns the three sentinels, to stop one or to send them
// commands with Do.
func (sn *Sentinel) Sentinels() []*Server { return slices.Clone(sn.sentinels) }

// Master returns the current master, as the first sentinel that answers
// says.
func (sn *Sentinel) Master() *Server {
	sn.t.Helper()
	var errs []error
	for _, s := range sn.sentinels {
		if !s.running() {
			continue
		}
		m, err := sn.masterOf(s)
		if err == nil {
			return m
		}
		errs = append(errs, err)
	}
	sn.t.Fatalf("no sentinel says which node is the master: %v", errors.Join(errs...))
	return nil
}

// Replica returns the node that is not the current master.
func (sn *Sentinel) Replica() *Server {
	sn.t.Helper()
	return sn.other(sn.Master())
}

// Failover has a sentinel fail the master over to the replica (SENTINEL
// FAILOVER) and waits, as AwaitMaster does, until the replica is master and
// the old master its replica. The sentinels turn the old master into a
// replica only once they have seen it claim to be master for 8 seconds, so
// a failover takes 10 to 20 seconds.
func (sn *Sentinel) Failover(t testing.TB) {
	t.Helper()
	next := sn.other(sn.Master())
	var reply string
	var err error
	for _, s := range sn.sentinels {
		if s.running() {
			if reply, err = s.Do("SENTINEL", "FAILOVER", sn.name); err == nil {
				break
			}
		}
	}
	if err != nil || reply != "+OK" {
		t.Fatalf("SENTINEL FAILOVER %s: %q, %v", sn.name, reply, err)
	}
	sn.AwaitMaster(t, next)
}

// AwaitMaster waits until every running sentinel names m as master, m says
// it is master, and the other node, unless it is stopped, is m's replica in
// sync, as the sentinels see too. A test that stops the master (Stop) waits
// with it for the sentinels to fail over on their own, which takes a few
// seconds; once it starts the old master again, AwaitMaster waits for the
// sentinels to make it a replica.
func (sn *Sentinel) AwaitMaster(t testing.TB, m *Server) {
	t.Helper()
	poll(t, "the sentinels to make "+m.Addr()+" master", func() error {
		replica := sn.other(m)
		if !replica.running() {
			replica = nil
		}
		if replica != nil {
			if err := replicating(replica, m); err != nil {
				return err
			}
		} else if err := isMaster(m); err != nil {
			return err
		}
		for _, s := range sn.sentinels {
			if s.running() {
				if err := sn.view(s, m, replica, false); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// other returns the node that is not n.
func (sn *Sentinel) other(n *Server) *Server {
	if n == sn.nodes[0] {
		return sn.nodes[1]
	}
	return sn.nodes[0]
}

// masterOf returns the node sentinel s names as master.
func (sn *Sentinel) masterOf(s *Server) (*Server, error) {
	addr, err := s.doArray("SENTINEL", "GET-MASTER-ADDR-BY-NAME", sn.name)
	if err != nil {
		return nil, fmt.Errorf("sentinel %s: %w", s.Addr(), err)
	}
	if len(addr) == 2 {
		for _, n := range sn.nodes {
			if addr[0] == "127.0.0.1" && addr[1] == strconv.Itoa(n.port) {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("sentinel %s names %v as master, which is no node of the test", s.Addr(), addr)
}

// view returns nil if sentinel s names master as master and, unless
// replica is nil, lists replica as its replica, both answering it. If inSync is set,
// the sentinel must also have seen the replica in sync with master: that
// can take 10 seconds after the replica changed, as the sentinels ask a
// replica for its INFO only that often while all is well.
func (sn *Sentinel) view(s, master, replica *Server, inSync bool) error {
	m, err := sn.masterOf(s)
	if err != nil {
		return err
	}
	if m != master {
		return fmt.Errorf("sentinel %s names %s as master, not %s", s.Addr(), m.Addr(), master.Addr())
	}
	mi, err := s.doArray("SENTINEL", "MASTER", sn.name)
	if err != nil {
		return err
	}
	if r := fields([]any{mi})[0]; !answers(r, "master") {
		return fmt.Errorf("sentinel %s sees master %s as %s, PING pending for %sms", s.Addr(), master.Addr(), r["flags"], r["last-ping-sent"])
	}
	if replica == nil {
		return nil
	}
	replicas, err := s.doArray("SENTINEL", "REPLICAS", sn.name)
	if err != nil {
		return err
	}
	for _, r := range fields(replicas) {
		if r["port"] != strconv.Itoa(replica.port) {
			continue
		}
		if !answers(r, "slave") ||
			inSync && (r["master-port"] != strconv.Itoa(master.port) || r["master-link-status"] != "ok") {
			return fmt.Errorf("sentinel %s sees replica %s as %s, of %s:%s, link %s, PING pending for %sms",
				s.Addr(), replica.Addr(), r["flags"], r["master-host"], r["master-port"], r["master-link-status"], r["last-ping-sent"])
		}
		return nil
	}
	return fmt.Errorf("sentinel %s does not know replica %s", s.Addr(), replica.Addr())
}

// peers returns nil if sentinel s knows the other sentinels and they
// answer it.
func (sn *Sentinel) peers(s *Server) error {
	others, err := s.doArray("SENTINEL", "SENTINELS", sn.name)
	if err != nil {
		return err
	}
	if len(others) != len(sn.sentinels)-1 {
		return fmt.Errorf("sentinel %s knows %d other sentinels, want %d", s.Addr(), len(others), len(sn.sentinels)-1)
	}
	for _, o := range fields(others) {
		if !answers(o, "sentinel") {
			return fmt.Errorf("sentinel %s sees sentinel %s as %s, PING pending for %sms", s.Addr(), o["port"], o["flags"], o["last-ping-sent"])
		}
	}
	return nil
}

// answers reports whether a sentinel's entry for an instance (from
// SENTINEL MASTER, REPLICAS or SENTINELS) has no flags but want, such as
// s_down or disconnected, and the instance answered the sentinel's last
// PING. A sentinel counts a ping as pending from the moment it meets an
// instance, and an instance that refuses the sentinel's credentials never
// answers one, so this is how a sentinel that cannot log in shows.
func answers(entry map[string]string, want string) bool {
	return entry["flags"] == want && entry["last-ping-sent"] == "0"
}

// isMaster returns nil if m says it is master.
func isMaster(m *Server) error {
	info, err := m.Do("INFO", "replication")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "role:master\r\n") {
		return fmt.Errorf("%s is no master:\n%s", m.Addr(), info)
	}
	return nil
}

// replicating returns nil if replica replicates master, in sync, as both
// of them say.
func replicating(replica, master *Server) error {
	info, err := replica.Do("INFO", "replication")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "role:slave\r\n") ||
		!strings.Contains(info, "master_port:"+strconv.Itoa(master.port)+"\r\n") ||
		!strings.Contains(info, "master_link_status:up\r\n") {
		return fmt.Errorf("%s is no replica of %s in sync:\n%s", replica.Addr(), master.Addr(), info)
	}
	info, err = master.Do("INFO", "replication")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "role:master\r\n") ||
		!strings.Contains(info, "port="+strconv.Itoa(replica.port)+",state=online") {
		return fmt.Errorf("%s is no master of %s in sync:\n%s", master.Addr(), replica.Addr(), info)
	}
	return nil
}

// fields turns the answer of SENTINEL REPLICAS or SENTINELS, one array of
// names and values for each instance, into maps.
func fields(instances []any) []map[string]string {
	var ms []map[string]string
	for _, inst := range instances {
		kv, _ := inst.([]any)
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			v, _ := kv[i+1].(string)
			m[k] = v
		}
		ms = append(ms, m)
	}
	return ms
}

// poll calls check until it returns nil, and fails the test with its last
// error if that takes longer than sentinelTimeout.
func poll(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(sentinelTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", sentinelTimeout, what, err)
		}
		time.Sleep(pollInterval)
	}
}

// confQuote quotes s for a Redis config file line.
func confQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
