package integration_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestAppServerEarlyHintsKeepTheHeaderDirectivesCommands: README says
// `header /logout X-Session-Destroy true` logs out whatever the app
// answers. An Express app that sends a 103 (res.writeEarlyHints) first
// has the session handler see the response header, with the directive's
// command in it, once for the 103 and once for the final response: the
// command must go out with neither, and apply with the final one only,
// whatever the 103 itself carries.
func TestAppServerEarlyHintsKeepTheHeaderDirectivesCommands(t *testing.T) {
	app := startAppServer(t, expressServer)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: filepath.Join(t.TempDir(), "sessions.db")}
	s.tester.Client.Jar = nil
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://127.0.0.1:%d {
	header /early-hints X-Session-Destroy true
	session {
		store bolt %s
	}
	reverse_proxy %s
}
`, adminPort, s.port, freePort(t), s.port, s.db, app.addr))
	site := &appSite{site: s, app: app}
	for _, row := range []struct {
		name string
		path string
		// after is the session a new cookie opens: keys set beside a
		// logout start a new session (README); none, the cookie expires.
		after map[string]string
	}{
		{"a 103 with a Link only", appPath("/early-hints"), nil},
		{"a 103 that carries commands of its own", appPath("/early-hints", "e", "X-Session-Set-Role:admin", "e", "X-Session-Destroy:true"), nil},
		{"a 103, then a final response with a set beside the directive's logout", appPath("/early-hints", "h", "X-Session-Set-Cart:pear"), map[string]string{"cart": "pear"}},
	} {
		t.Run(row.name, func(t *testing.T) {
			a := site.in(t)
			v := a.appLogin()
			before := v.sid
			ex := a.send(v, "GET", row.path) // fails on a namespace header in the 103 or the final response
			if len(ex.hints) != 1 {
				t.Fatalf("the client got %d 1xx responses, want 1: %v", len(ex.hints), ex.hints)
			}
			switch {
			case row.after == nil && v.sid != "":
				t.Fatalf("the logout did not expire the cookie: %q", ex.res.Header.Values("Set-Cookie"))
			case row.after != nil && (v.sid == "" || v.sid == before):
				t.Fatalf("the logout with a set gave no new session: %q", ex.res.Header.Values("Set-Cookie"))
			case row.after != nil:
				if got := a.sessionOf(v, false); !maps.Equal(got, row.after) {
					t.Fatalf("the new cookie opens %v, want %v", got, row.after)
				}
			}
			if got := a.sessionOf(&visitor{site: a.site, sid: before}, false); !maps.Equal(got, map[string]string{}) {
				t.Fatalf("after the logout the old ID still opens %v", got)
			}
		})
	}
}
