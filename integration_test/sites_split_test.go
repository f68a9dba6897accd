package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A site on two ports is two servers to Caddy, with a handler and a realm
// each, whatever the other sites: a login at one port is no session at
// the other (and its cookie, which browsers send to both ports, replaces
// the other's). The README says so and gives the remedy, a realm named
// in the site, which this test holds to.
func TestSiteOnTwoPortsIsARealmPerPort(t *testing.T) {
	cases := []struct {
		name, realm, other string
		shared             bool
	}{
		{name: "alone"},
		{name: "alone, with its realm named", realm: "realm app", shared: true},
		{name: "beside another site on one of its ports", other: "http://localhost:%d {\n\trespond \"other\"\n}\n"},
		{name: "beside another site, with its realm named", realm: "realm app", other: "http://localhost:%d {\n\trespond \"other\"\n}\n", shared: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMultiSite(t, "one", "two")
			config := fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n", adminPort, freePort(t), freePort(t))
			config += fmt.Sprintf("http://127.0.0.1:%d, http://127.0.0.1:%d {\n\tsession {\n\t\tstore bolt %s\n\t\t%s\n\t}\n\treverse_proxy %s\n}\n",
				m.ports["one"], m.ports["two"], m.expand("{db:s}"), c.realm, m.up.addr())
			if c.other != "" {
				config += fmt.Sprintf(c.other, m.ports["one"])
			}
			m.tester.InitServer(config, "caddyfile")
			login := m.login("one", "sid", "X-Session-Set-User: alice")
			res, body := m.get("two", "/", login)
			if shared := strings.Contains(body, `"X-Session-User":["alice"]`); res.StatusCode != http.StatusOK || shared != c.shared {
				t.Fatalf("a login at one address of the site is a session at the other: %v (%d %s), want %v", shared, res.StatusCode, body, c.shared)
			}
		})
	}
}
