// Package redistest runs a real redis-server for tests: on a free loopback
// port, with its files in the test's temporary directory, no persistence,
// and stopped when the test ends. Tests stop and start it again to play an
// outage.
//
// Without redis-server on PATH the tests that need it skip with a message
// that says how to install it, unless the environment variable
// CADDY_SESSION_REQUIRE_REDIS is 1 (CI sets it): then they fail, so that CI
// never passes by skipping them.
package redistest

import (
	"bufio"
	"bytes"
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
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

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
	bin := lookPath(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("redis-server on port %d:\n%s", s.port, s.output())
		}
	})
	// The port is free when freeport.Must returns but may be taken before the
	// server binds it; try again on another port if so.
	var err error
	for range 3 {
		s.port = freeport.Must(t)
		s.args = append([]string{
			"--port", strconv.Itoa(s.port),
			"--bind", "127.0.0.1",
			"--dir", s.dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--logfile", "",
		}, extra...)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("starting redis-server: %v\n%s", err, s.output())
	return nil
}

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under name, alone (a quorum of one), and stops it when
// the test ends. conf are further lines of its configuration file, such
// as "requirepass <password>" for the sentinel itself, or
// "sentinel auth-pass <name> <password>" for the master's password.
func StartSentinel(t testing.TB, master *Server, name string, conf ...string) *Server {
	t.Helper()
	bin := lookPath(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("redis sentinel on port %d:\n%s", s.port, s.output())
		}
	})
	// A sentinel runs only from a configuration file, which it rewrites.
	file := filepath.Join(s.dir, "sentinel.conf")
	var err error
	for range 3 {
		s.port = freeport.Must(t)
		lines := append([]string{
			"port " + strconv.Itoa(s.port),
			"bind 127.0.0.1",
			"dir " + s.dir,
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1", name, master.port),
		}, conf...)
		if err = os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.args = []string{file, "--sentinel"}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("starting redis sentinel: %v\n%s", err, s.output())
	return nil
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

// URL returns the server's address as a redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

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
// answer: "+OK", ":1", "-ERR ..." as the server sends them, or the contents
// of a bulk string. It is for setting up tests without a client library.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if err != nil || !strings.HasPrefix(line, "$") {
		return line, err
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return line, err
	}
	bulk := make([]byte, n+2)
	if _, err := io.ReadFull(r, bulk); err != nil {
		return "", err
	}
	return string(bulk[:n]), nil
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
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited at startup: %v", err)
		default:
		}
		// A server with a password answers NOAUTH: it is up all the same.
		if reply, err := s.Do("PING"); err == nil && (reply == "+PONG" || strings.HasPrefix(reply, "-NOAUTH")) {
			s.mu.Lock()
			s.proc = &process{cmd.Process, exited}
			s.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server did not answer PING within %s", startTimeout)
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
