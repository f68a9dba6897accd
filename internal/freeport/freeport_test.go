package freeport

import (
	"net"
	"runtime"
	"testing"
)

func TestPickNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Must(t)
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}

// TestPickSkipsPortsClaimedElsewhere stands in for another test process
// with a second open of the same lock file: flock locks belong to an open
// file, so they conflict within one process as they do across two.
func TestPickSkipsPortsClaimedElsewhere(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("ports are claimed across processes only where flock exists")
	}
	taken := Must(t)
	// Forget it, as another process would never have known of it; its lock
	// stays held here.
	given.Lock()
	delete(given.ports, taken)
	given.Unlock()
	kernel := []int{taken}
	got, err := pick(func() (int, net.Listener, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if len(kernel) > 0 {
			port, kernel = kernel[0], kernel[1:]
		}
		return port, l, nil
	}, claim)
	if err != nil {
		t.Fatal(err)
	}
	if got == taken {
		t.Fatalf("Pick gave port %d, which another process claimed", taken)
	}
}

// TestPickOutsideTheEphemeralRange: where the kernel tells its ephemeral
// range, Pick gives ports below it, which no bind of port 0 is given.
func TestPickOutsideTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low-lowestPort < 1000 {
		t.Skip("the kernel's ephemeral range is unknown here, or leaves no room below it")
	}
	for range 20 {
		port := Must(t)
		if port < lowestPort || port >= low {
			t.Fatalf("Pick gave port %d, want one in [%d, %d), below the ephemeral range", port, lowestPort, low)
		}
	}
}
