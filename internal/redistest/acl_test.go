package redistest

import (
	"strings"
	"testing"
)

// TestPassword checks that Do logs in with the password SetAuth gives, and
// that DoAs returns the server's refusal of a wrong one.
func TestPassword(t *testing.T) {
	s := Start(t, "--requirepass", `p{a} "ss`)
	if reply, err := s.Do("PING"); err != nil || !strings.HasPrefix(reply, "-NOAUTH") {
		t.Fatalf("PING without a password: %q, %v; want NOAUTH", reply, err)
	}
	if reply, err := s.DoAs("", "wrong", "PING"); err != nil || !strings.HasPrefix(reply, "-WRONGPASS") {
		t.Fatalf("PING with a wrong password: %q, %v; want WRONGPASS", reply, err)
	}
	s.SetAuth("", `p{a} "ss`)
	if reply, err := s.Do("PING"); err != nil || reply != "+PONG" {
		t.Fatalf("PING with the password: %q, %v", reply, err)
	}
	// Stop and Start log in too to see that the server is up.
	s.Restart()
}
