package redistest

import (
	"strconv"
)

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
