package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNoAppTossesASessionCookieOntoAnotherSite: an app behind a session
// handler cannot set a session cookie of another site of the Caddy, also
// not by a Domain that covers that site's hosts. a.example.test keeps its
// session in the host-only cookie asid, which browsers never send to
// b.example.test, so b's handler did not count it among the cookies it
// screens; b's app answering `Set-Cookie: asid=<an ID of its choice>;
// Domain=example.test` planted the ID on a.example.test (the attacker's
// own session there: the user then works on a as the attacker). Shown on
// one port and across two (browsers ignore ports), from the app and from
// the site's error route, for every spelling of Domain a browser reads;
// the app's other cookies, and a line that reaches no session's host,
// pass.
func TestNoAppTossesASessionCookieOntoAnotherSite(t *testing.T) {
	lines := []struct {
		line    string
		removed bool
	}{
		{"asid=planted; Domain=example.test; Path=/", true},
		{"asid=planted; domain=.EXAMPLE.test", true},
		{"asid=planted; Path=/; Domain=a.example.test; HttpOnly", true},
		{"asid=planted; Domain=example.test; Domain=", true}, // an empty Domain is ignored
		{"asid=planted; Domain=other.test; Domain=example.test", true},
		{"wsid=planted; Domain=example.test", true},        // a wildcard site's cookie
		{"wsid=planted; Domain=x.w.example.test", true},    // on one of its hosts
		{"asid=planted; Domain=other.test", false},         // reaches no site of the Caddy
		{"asid=planted; Path=/", false},                    // host-only, to b alone
		{"wsid=planted; Domain=b.example.test", false},     // reaches b alone
		{"theme=dark; Domain=example.test; Path=/", false}, // the app's own
	}
	for _, ports := range []int{1, 2} {
		for _, via := range []string{"the app", "the error route"} {
			t.Run(fmt.Sprintf("%d ports/%s", ports, via), func(t *testing.T) {
				up := startUpstream(t)
				db := filepath.Join(t.TempDir(), "sessions.db")
				portA, portB := freePort(t), freePort(t)
				if ports == 1 {
					portB = portA
				}
				site := func(host string, port int, cookie string) string {
					return fmt.Sprintf(`http://%s:%d {
	session {
		store bolt %s
		cookie %s
	}
	error /boom 404
	handle_errors {
		reverse_proxy %s
	}
	reverse_proxy %[5]s
}
`, host, port, db, cookie, up.addr())
				}
				config := site("a.example.test", portA, "asid") + site("*.w.example.test", portA, "wsid") + site("b.example.test", portB, "bsid")
				tester := caddyOnPort(t, portB, config)
				path := "/"
				if via == "the error route" {
					path = "/boom"
				}
				for _, l := range lines {
					res, body := getFrom(t, tester, portB, "b.example.test", path, "", "Set-Cookie: "+l.line)
					if res.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d, want the app's 200: %s", l.line, res.StatusCode, body)
					}
					removed := l.removed
					if ports == 1 && via == "the error route" && !strings.HasPrefix(l.line, "theme=") {
						// The guard removes the session cookies of
						// every handler of its server, by name.
						removed = true
					}
					if kept := slices.Contains(res.Header["Set-Cookie"], l.line); kept == removed {
						t.Errorf("b's %s answered Set-Cookie %q: kept %v, want %v", via, l.line, kept, !removed)
					}
				}
			})
		}
	}
}
