package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestSessionMatchersTellSitesApartByHost: one hostless site serves two
// hosts, each with a session of its own (`session @a`, `session @b`, the
// default cookie on both, one store). The directive's matcher is the
// handler's own, so both handlers run for every request; the one that
// does not match must leave the cookie to the one that does, and the
// hosts the matchers name must still make each handler's realm, as they
// did when the matcher was the handler's route's: a session of one host
// never opens the other, and a host neither matches gets no namespace
// header from the client and no session ID.
func TestSessionMatchersTellSitesApartByHost(t *testing.T) {
	h := newHostSites(t)
	h.load(`
http://:{port} {
	@a host a.localhost
	@b host b.localhost
	session @a {
		store bolt {db}
	}
	session @b {
		store bolt {db}
	}
	reverse_proxy {up}
}
`)
	alice := h.login("a.localhost", "alice")
	bob := h.login("b.localhost", "bob") // fails if the handler of @a took b's cookie away
	for _, c := range []struct{ host, cookie, want string }{
		{"a.localhost", alice, "alice"},
		{"b.localhost", bob, "bob"},
		{"b.localhost", alice, ""},
		{"a.localhost", bob, ""},
	} {
		if got, _ := h.user(c.host, c.cookie); got != c.want {
			t.Errorf("%s with cookie %s: user %q, want %q", c.host, c.cookie, got, c.want)
		}
	}
	realms := sessionRealms(t)
	for _, host := range []string{"a.localhost", "b.localhost"} {
		if want := fmt.Sprintf("%q", fmt.Sprintf("%s@:%d", host, h.port)); !strings.Contains(realms, want) {
			t.Errorf("no session of realm %s: the store holds %s", want, realms)
		}
	}
	// A host that neither matches: nothing of the namespace or the ID.
	got, set := h.user("c.localhost", alice+"; theme=dark", "X-Session-Set-User: mallory")
	if got != "" || set != "" {
		t.Errorf("c.localhost: user %q, cookie %q; want neither", got, set)
	}
	seenAt, _ := h.visit("c.localhost", alice+"; theme=dark", http.Header{"X-Session-User": {"admin"}})
	if v := seenAt.Headers.Get("X-Session-User"); v != "" {
		t.Errorf("c.localhost passed the client's X-Session-User %q to the app", v)
	}
	if c := seenAt.Headers.Get("Cookie"); c != "theme=dark" {
		t.Errorf("c.localhost passed Cookie %q to the app, want only theme=dark", c)
	}
}
