package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	s := Start(t)
	if reply, err := s.Do("SET", "k", "v"); err != nil || reply != "+OK" {
		t.Fatalf("SET: %q, %v", reply, err)
	}
	if reply, err := s.Do("GET", "k"); err != nil || reply != "v" {
		t.Fatalf("GET: %q, %v", reply, err)
	}
	port := s.Port()
	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("the server answered after Stop")
	}
	s.Start()
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	// Nothing is kept on disk: the data went with the process.
	if reply, err := s.Do("EXISTS", "k"); err != nil || reply != ":0" {
		t.Fatalf("EXISTS after a restart: %q, %v", reply, err)
	}
	s.Restart()
	if reply, err := s.Do("PING"); err != nil || reply != "+PONG" {
		t.Fatalf("PING after Restart: %q, %v", reply, err)
	}
}

func TestPause(t *testing.T) {
	s := Start(t)
	s.Pause()
	// A paused server accepts the connection (the kernel does) but does
	// not answer within the deadline.
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	var buf [16]byte
	if n, err := c.Read(buf[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a paused server answered %q, %v", buf[:n], err)
	}
	s.Resume()
	if reply, err := s.Do("PING"); err != nil || reply != "+PONG" {
		t.Fatalf("PING after Resume: %q, %v", reply, err)
	}
}

func TestStartCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: a Redis Cluster takes seconds to form")
	}
	start := time.Now()
	nodes := StartCluster(t, 3)
	t.Logf("cluster ready in %s", time.Since(start))
	for _, n := range nodes {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
			t.Fatalf("CLUSTER INFO on %s: %q, %v", n.Addr(), info, err)
		}
	}
}

// recorder is a testing.TB that notes a skip or a failure instead of
// ending the test that runs it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingServer(t *testing.T) {
	tests := []struct {
		require  string
		wantSkip bool
	}{
		{"", true},
		{"0", true},
		{"1", false},
	}
	for _, tc := range tests {
		t.Run("require="+tc.require, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv(RequireEnv, tc.require)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				lookPath(r)
			}()
			<-done
			msg := r.skipped
			if !tc.wantSkip {
				msg = r.failed
			}
			if msg == "" {
				t.Fatalf("skipped %q, failed %q; want a %s", r.skipped, r.failed, map[bool]string{true: "skip", false: "failure"}[tc.wantSkip])
			}
			if !strings.Contains(msg, "apt-get install redis-server") {
				t.Fatalf("message %q does not say how to install redis-server", msg)
			}
		})
	}
}
