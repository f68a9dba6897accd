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
//
// And a port is picked outside the kernel's ephemeral range where it can
// tell that range (Linux): a server that binds port 0 (an httptest
// upstream, a redis-server of the tests) is given a port of that range,
// and could be given one picked here a moment before, ahead of the server
// it was picked for. Caddy then failed to bind it, and the test's
// requests reached the upstream without the session handler.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
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
	return pick(listenOutsideEphemeral, claim)
}

// lowestPort is the lowest port Pick gives out of the ephemeral range.
const lowestPort = 10000

// listenOutsideEphemeral is listenAny for a port below the kernel's
// ephemeral range, which no bind of port 0 is given; listenAny where that
// range is unknown, or leaves no room below it.
func listenOutsideEphemeral() (int, net.Listener, error) {
	low := ephemeralLow()
	if low-lowestPort < 1000 {
		return listenAny()
	}
	for range 100 {
		port := lowestPort + rand.IntN(low-lowestPort)
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return port, l, nil
		}
	}
	return listenAny()
}

// ephemeralLow is the first port of the kernel's ephemeral range, 0 if
// unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return low
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
