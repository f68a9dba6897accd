package redistest

import (
	"strconv"
	"strings"
	"testing"
)

// AddUser creates the ACL user name on the server, enabled, with password
// and the ACL rules given: ACL SETUSER name on >password rules... A new
// user may do nothing its rules do not allow, so a test can give it just
// the commands and keys a client needs, for example
//
//	srv.AddUser(t, "store", "secret", "~caddy-session:*", "+@connection", "+hgetall", "+client|tracking")
//
// and see that the client gets by with them. The user exists on this
// server only: ACLs are neither replicated nor shared by a cluster.
func (s *Server) AddUser(t testing.TB, name, password string, rules ...string) {
	t.Helper()
	args := append([]string{"ACL", "SETUSER", name, "on", ">" + password}, rules...)
	reply, err := s.Do(args...)
	if err != nil || reply != "+OK" {
		t.Fatalf("redis ACL SETUSER %s on >... %s: %q, %v", name, strings.Join(rules, " "), reply, err)
	}
}

// DoAs is Do logged in as user with password (AUTH user password), instead
// of with the server's own credentials. An empty user logs in as the
// default user (AUTH password); an empty password does not log in.
func (s *Server) DoAs(user, password string, args ...string) (string, error) {
	reply, err := s.exchange(user, password, args)
	if elems, ok := reply.([]any); ok {
		return "*" + strconv.Itoa(len(elems)), err
	}
	line, _ := reply.(string)
	return line, err
}

// SetAuth sets the credentials Do logs in with, as DoAs takes them; a
// server started with "--requirepass", "x" needs SetAuth("", "x").
func (s *Server) SetAuth(user, password string) {
	s.user, s.password = user, password
}
