// Package freeport hands out loopback TCP ports for tests and benchmarks.
//
// A port the kernel just gave out and took back is free, but the kernel may
// give the same port to the next caller: two servers of one test (a site and
// its https_port, a redis-server and a Caddy) then collide. Pick never
// returns a port twice in a process, so the ports one test asks for in turn
// are distinct.
//
// Test binaries of several packages run at once (go test ./... runs them in
// parallel), and each has its own memory: one could be given the port
// another was given a moment before, and the second server to bind it
// fails. So a port is also claimed across processes, by a lock on a file
// named for it that the claiming process holds until it exits.
package freeport

import (
	"net"
	"sync"
)

var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Pick returns a loopback port that was free a moment ago, that no earlier
// call in this process returned and that no other live process claimed
// through this package.
func Pick() (int, error) {
	return pick(listenAny, claim)
}

// listenAny has the kernel give out a free loopback port, and returns the
// port with the listener that holds it.
func listenAny() (int, net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	return l.Addr().(*net.TCPAddr).Port, l, nil
}

func pick(listen func() (int, net.Listener, error), claim func(port int) bool) (int, error) {
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
		port, l, err := listen()
		if err != nil {
			return 0, err
		}
		held = append(held, l)
		if given.ports[port] {
			continue
		}
		// Whichever way the claim goes, this process does not ask for the
		// port again: if another process holds it, it holds it until it
		// exits.
		given.ports[port] = true
		if claim(port) {
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
