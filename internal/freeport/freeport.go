// Package freeport hands out loopback TCP ports for tests and benchmarks.
//
// A port the kernel just gave out and took back is free, but the kernel may
// give the same port to the next caller: two servers of one test (a site and
// its https_port, a redis-server and a Caddy) then collide. Pick never
// returns a port twice in a process, so the ports one test asks for in turn
// are distinct.
package freeport

import (
	"net"
	"sync"
)

var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Pick returns a loopback port that was free a moment ago and that no
// earlier call in this process returned.
func Pick() (int, error) {
	given.Lock()
	defer given.Unlock()
	// Keep the listeners of refused ports open until the end, so the kernel
	// cannot give the same one back at once.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if !given.ports[port] {
			given.ports[port] = true
			return port, nil
		}
	}
}

// TB is the part of testing.TB that Must uses.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Must is Pick for a test: it fails the test if no port can be had.
func Must(t TB) int {
	t.Helper()
	port, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
