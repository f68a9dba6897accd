// Package redistest runs real redis-server processes for tests: on free
// loopback ports, with their files in the test's temporary directory, no
// persistence, and stopped when the test ends. Tests stop and start them
// again to play an outage. Each topology the Redis store supports has a
// helper:
//
//   - Start: one server.
//   - StartCluster: a Redis Cluster of masters without replicas.
//   - StartSentinel: a master, a replica and three sentinels watching them;
//     Failover moves the master.
//   - StartTLS: one server that speaks only TLS, with a test CA, a server
//     certificate and a client certificate.
//
// Server.AddUser adds an ACL user; Server.Do and Server.DoAs send commands,
// logging in where a password is set and over TLS where the server wants it.
//
// Without redis-server on PATH the tests that need it skip with a message
// that says how to install it, unless the environment variable
// CADDY_SESSION_REQUIRE_REDIS is 1 (CI sets it): then they fail, so that CI
// never passes by skipping them.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/freeport"
)

// RequireEnv is the environment variable that turns a missing redis-server
// from a skip into a failure.
const RequireEnv = "CADDY_SESSION_REQUIRE_REDIS"

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// clusterTimeout bounds how long a new cluster may take to agree on its
// slots. Gossip rounds are paced by the node timeout and slow down when the
// machine is busy (CI runs test packages in parallel on two cores), so it
// is generous; a healthy cluster is ready in 2 to 5 seconds.
const clusterTimeout = 45 * time.Second

// Server is one redis-server process. Its methods are for the goroutine of
// the test that started it.
type Server struct {
	t     testing.TB
	bin   string
	dir   string
	port  int
	args  []string
	label string // names the process in the logs of a failed test

	// Do connects over TLS with tls if it is set, and logs in as user with
	// password if password is set.
	tls            *tls.Config
	user, password string

	mu   sync.Mutex // guards proc and logs, which the process writes to
	proc *process
	logs bytes.Buffer
}

// process is a running redis-server and the channel its exit arrives on
// (exec.Cmd.Wait may be called only once, and a goroutine has called it).
type process struct {
	*os.Process
	exited chan error
}

// take returns the running process and forgets it, or nil.
func (s *Server) take() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}

// Start starts a redis-server on a free loopback port and stops it when
// the test ends. extra are further command-line options, such as
// "--cluster-enabled", "yes".
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s, err := launch(t, spec{extra: extra})
	if err != nil {
		t.Fatalf("starting redis-server: %v\n%s", err, s.output())
	}
	return s
}

// spec says how to launch a server.
type spec struct {
	label string // "redis-server" if empty
	// conf, if not empty, is written to a config file in the server's
	// directory and given before the options, as a sentinel needs.
	conf           string
	tls            *tls.Config // the port is a TLS port, and Do speaks TLS with this
	user, password string      // what Do logs in with
	extra          []string    // further command-line options
}

// launch starts a server as sp says on a free loopback port, and stops it
// when the test ends. On error the server is returned for its output.
func launch(t testing.TB, sp spec) (*Server, error) {
	t.Helper()
	bin := lookPath(t)
	s := &Server{
		t: t, bin: bin, dir: t.TempDir(), label: sp.label,
		tls: sp.tls, user: sp.user, password: sp.password,
	}
	if s.label == "" {
		s.label = "redis-server"
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("%s on port %d:\n%s", s.label, s.port, s.output())
		}
	})
	// The port is free when freeport.Must returns but may be taken before the
	// server binds it; try again on another port if so.
	var err error
	for range 3 {
		s.port = freeport.Must(t)
		s.args = nil
		if sp.conf != "" {
			// Written afresh for each try: a sentinel rewrites its file.
			conf := filepath.Join(s.dir, "redis.conf")
			if err := os.WriteFile(conf, []byte(sp.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			s.args = append(s.args, conf)
		}
		if sp.tls != nil {
			s.args = append(s.args, "--port", "0", "--tls-port", strconv.Itoa(s.port))
		} else {
			s.args = append(s.args, "--port", strconv.Itoa(s.port))
		}
		s.args = append(s.args,
			"--bind", "127.0.0.1",
			"--dir", s.dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--logfile", "",
		)
		s.args = append(s.args, sp.extra...)
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return s, err
}

// lookPath finds redis-server, or ends the test: a skip that says how to
// install it, or a failure when RequireEnv is set.
func lookPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	msg := "redis-server is not on PATH: install redis-server (apt-get install redis-server) to run the Redis tests"
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 makes this a failure)", msg, RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// Port returns the server's TCP port. It stays the same across Stop and
// Start.
func (s *Server) Port() int { return s.port }

// Addr returns the server's address, 127.0.0.1:<port>.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's address as a redis:// URL, or a rediss:// URL
// for a server that speaks TLS.
func (s *Server) URL() string {
	if s.tls != nil {
		return "rediss://" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// Stop shuts the server down, as an outage would, and waits until it has
// gone. Its data is lost: the server keeps nothing on disk.
func (s *Server) Stop() {
	s.t.Helper()
	p := s.take()
	if p == nil {
		s.t.Fatal("redis-server is not running")
	}
	_ = p.Signal(syscall.SIGTERM)
	_ = p.Signal(syscall.SIGCONT) // a paused server acts on SIGTERM only once resumed
	<-p.exited
}

// Start starts the server again after Stop, on the same port, and waits
// until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("starting redis-server again: %v\n%s", err, s.output())
	}
}

// Restart is Stop then Start.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but nothing is answered, as with a server too slow for the
// client's timeouts. Resume undoes it; no data is lost.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatal("redis-server is not running")
	}
	if err := p.Signal(sig); err != nil {
		s.t.Fatalf("signalling redis-server: %v", err)
	}
}

// Do sends one command to the server on a new connection and returns its
// answer: "+OK", ":1", "-ERR ..." as the server sends them, the contents
// of a bulk string, "$-1" for a nil one, or "*<n>" for an array of n
// elements. It is for setting up tests without a client library.
//
// Do connects over TLS to a server started by StartTLS, and logs in first
// with the credentials SetAuth gave, or those the helper that started the
// server set. If the server refuses them, Do returns its refusal
// ("-WRONGPASS ...") and does not send the command.
func (s *Server) Do(args ...string) (string, error) {
	return s.DoAs(s.user, s.password, args...)
}

// exchange sends one command as Do does and returns the answer read by
// readReply.
func (s *Server) exchange(user, password string, args []string) (any, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	if s.tls != nil {
		conf := s.tls.Clone()
		if conf.ServerName == "" {
			conf.ServerName = "127.0.0.1"
		}
		c = tls.Client(c, conf)
	}
	r := bufio.NewReader(c)
	if password != "" {
		auth := []string{"AUTH", password}
		if user != "" {
			auth = []string{"AUTH", user, password}
		}
		reply, err := roundTrip(c, r, auth)
		if err != nil {
			return reply, err
		}
		if line, ok := reply.(string); ok && strings.HasPrefix(line, "-") {
			return line, nil
		}
	}
	return roundTrip(c, r, args)
}

// roundTrip writes one command and reads its answer.
func roundTrip(w io.Writer, r *bufio.Reader, args []string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", err
	}
	return readReply(r)
}

// readReply reads one RESP2 answer: a string for a line ("+OK", "-ERR x",
// ":1", "$-1", "*-1") or the contents of a bulk string, and an []any of
// answers for an array.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if err != nil || line == "" || (line[0] != '$' && line[0] != '*') {
		return line, err
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return line, err
	}
	if line[0] == '*' {
		elems := make([]any, n)
		for i := range elems {
			if elems[i], err = readReply(r); err != nil {
				return elems, err
			}
		}
		return elems, nil
	}
	bulk := make([]byte, n+2)
	if _, err := io.ReadFull(r, bulk); err != nil {
		return "", err
	}
	return string(bulk[:n]), nil
}

// doArray sends a command that answers an array, as Do does.
func (s *Server) doArray(args ...string) ([]any, error) {
	reply, err := s.exchange(s.user, s.password, args)
	if err != nil {
		return nil, err
	}
	elems, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("redis %s: %v", strings.Join(args, " "), reply)
	}
	return elems, nil
}

// start runs the process and polls PING until it answers: a readiness
// check with a deadline, not a sleep over a race.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	w := lockedWriter{s}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	var reply string
	var err error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited at startup: %v", s.label, err)
		default:
		}
		// A server with a password answers NOAUTH when Do has none: it is
		// up all the same.
		reply, err = s.Do("PING")
		if err == nil && (reply == "+PONG" || strings.HasPrefix(reply, "-NOAUTH")) {
			s.mu.Lock()
			s.proc = &process{cmd.Process, exited}
			s.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("%s did not answer PING within %s: last answer %q, %v", s.label, startTimeout, reply, err)
}

// running reports whether the server runs: started and not stopped.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// kill ends the process at once, for the end of the test.
func (s *Server) kill() {
	p := s.take()
	if p == nil {
		return
	}
	_ = p.Kill()
	<-p.exited
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// lockedWriter collects the process's output under the server's lock.
type lockedWriter struct{ s *Server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// StartCluster starts a Redis Cluster of n masters without replicas, the
// slots split evenly between them, and waits until every node reports the
// cluster as ok. Its nodes are stopped when the test ends.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	busPorts := make([]int, n)
	for i := range nodes {
		busPorts[i] = freeport.Must(t)
		nodes[i] = Start(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
			// The bus port defaults to the port + 10000, which may be
			// taken or above 65535: give it a free port of its own.
			"--cluster-port", strconv.Itoa(busPorts[i]),
		)
	}
	for i, node := range nodes {
		first, last := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		// Distinct config epochs, as redis-cli --cluster create sets them:
		// with equal ones, a node may ignore another's slot claims until
		// the epoch collision is resolved, and the cluster stays "fail".
		node.must("CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
		node.must("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last))
		if i > 0 {
			node.must("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(nodes[0].port), strconv.Itoa(busPorts[0]))
		}
	}
	// Gossip takes a moment to spread the slots: poll for readiness.
	deadline := time.Now().Add(clusterTimeout)
	for _, node := range nodes {
		for {
			info, err := node.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster did not become ready: %q, %v", info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

// must sends a command that has to answer +OK.
func (s *Server) must(args ...string) {
	s.t.Helper()
	reply, err := s.Do(args...)
	if err != nil || reply != "+OK" {
		s.t.Fatalf("redis %s: %q, %v", strings.Join(args, " "), reply, err)
	}
}
