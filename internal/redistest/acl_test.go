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

// TestAddUser checks that a user made by AddUser may run the commands, keys
// and subcommands its rules allow and is refused the rest.
func TestAddUser(t *testing.T) {
	s := Start(t)
	s.AddUser(t, "store", "secret",
		"~caddy-session:*", "+ping", "+hset", "+hgetall", "+client|id", "+acl|whoami")
	tests := []struct {
		args []string
		want string // the answer, or its start for an error
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"ACL", "WHOAMI"}, "store"},
		{[]string{"HSET", "caddy-session:a", "f", "v"}, ":1"},
		{[]string{"HGETALL", "caddy-session:a"}, "*2"},
		{[]string{"CLIENT", "ID"}, ":"},
		// A command, a key and a subcommand the rules leave out.
		{[]string{"GET", "caddy-session:a"}, "-NOPERM"},
		{[]string{"HSET", "other:a", "f", "v"}, "-NOPERM"},
		{[]string{"CLIENT", "LIST"}, "-NOPERM"},
		{[]string{"FLUSHALL"}, "-NOPERM"},
	}
	for _, tc := range tests {
		reply, err := s.DoAs("store", "secret", tc.args...)
		if err != nil || !strings.HasPrefix(reply, tc.want) {
			t.Errorf("%s as store: %q, %v; want %q", strings.Join(tc.args, " "), reply, err, tc.want)
		}
	}
	if reply, err := s.DoAs("store", "wrong", "PING"); err != nil || !strings.HasPrefix(reply, "-WRONGPASS") {
		t.Errorf("PING as store with a wrong password: %q, %v; want WRONGPASS", reply, err)
	}
	// SetAuth makes Do log in as the user.
	s.SetAuth("store", "secret")
	if reply, err := s.Do("ACL", "WHOAMI"); err != nil || reply != "store" {
		t.Errorf("ACL WHOAMI after SetAuth: %q, %v", reply, err)
	}
}
