package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// hostedCaddy is a Caddy whose sites are named by host and port, so that
// a request names its site with a real Host header, as a browser does:
// the sites of one port tell each other apart by host, and a browser
// sends a cookie of a host (or of a domain over it) to each of its ports.
type hostedCaddy struct {
	t      *testing.T
	tester *caddytest.Tester
	up     *upstream
	ports  map[string]int
	dir    string
}

func newHostedCaddy(t *testing.T, ports ...string) *hostedCaddy {
	t.Helper()
	c := &hostedCaddy{t: t, tester: caddytest.NewTester(t), up: startUpstream(t), ports: map[string]int{}, dir: t.TempDir()}
	c.tester.Client.Jar = nil
	for _, p := range ports {
		c.ports[p] = freePort(t)
	}
	return c
}

// load loads a Caddyfile in which {port:name} is a port of the Caddy,
// {up} the upstream and {db:name} a bolt file.
func (c *hostedCaddy) load(caddyfile string) {
	c.t.Helper()
	for name, p := range c.ports {
		caddyfile = strings.ReplaceAll(caddyfile, "{port:"+name+"}", fmt.Sprint(p))
	}
	caddyfile = strings.ReplaceAll(caddyfile, "{up}", c.up.addr())
	for {
		i := strings.Index(caddyfile, "{db:")
		if i < 0 {
			break
		}
		j := strings.Index(caddyfile[i:], "}") + i
		caddyfile = caddyfile[:i] + filepath.Join(c.dir, caddyfile[i+4:j]+".db") + caddyfile[j+1:]
	}
	global := fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n", adminPort, freePort(c.t), freePort(c.t))
	c.tester.InitServer(global+caddyfile, "caddyfile")
}

// get sends a GET for host on the port named port, with a Cookie header
// and upstream commands.
func (c *hostedCaddy) get(host, port, path, cookie string, commands ...string) (*http.Response, string) {
	c.t.Helper()
	res, body := getFrom(c.t, c.tester, c.ports[port], host, path, cookie, commands...)
	return res, string(body)
}

// login sends the commands to host and returns the name=value of the
// cookie named cookie that the answer sets.
func (c *hostedCaddy) login(host, port, path, cookie string, commands ...string) string {
	c.t.Helper()
	res, body := c.get(host, port, path, "", commands...)
	for _, ck := range res.Cookies() {
		if ck.Name == cookie && ck.Value != "" {
			return ck.Name + "=" + ck.Value
		}
	}
	c.t.Fatalf("%s:%s%s issued no %s cookie (status %d): %s", host, port, path, cookie, res.StatusCode, body)
	return ""
}

// TestNoAppGetsAnotherSessionsCookieByHost: the session cookie of
// one handler that a browser sends to the hosts of another must not
// reach the other's app, whatever the hosts look like: a wildcard site
// that covers the cookie's domain, a named route several sites invoke.
// Each handler still reads its own.
func TestNoAppGetsAnotherSessionsCookieByHost(t *testing.T) {
	type login struct {
		host, port, path, cookie, command string
	}
	type want struct {
		host, port, path string
		send             []string // the session cookies a browser sends there, by name
		user             string   // the X-Session-User the app must get
		forward          string   // the one session cookie the app may get (forward_cookie), by name
	}
	cases := []struct {
		name      string
		ports     []string
		caddyfile string
		logins    []login
		wants     []want
	}{
		{
			name:  "a cookie domain of a host that a wildcard site on another port covers",
			ports: []string{"p1", "p2"},
			caddyfile: `
http://a.example.test:{port:p1} {
	session {
		store bolt {db:a}
		cookie asid {
			domain a.example.test
		}
	}
	reverse_proxy {up}
}
http://*.example.test:{port:p2} {
	session {
		store bolt {db:w}
		cookie wsid
	}
	reverse_proxy {up}
}`,
			logins: []login{{"a.example.test", "p1", "/", "asid", "X-Session-Set-User: alice"}, {"a.example.test", "p2", "/", "wsid", "X-Session-Set-User: walt"}},
			wants: []want{
				{"a.example.test", "p2", "/", []string{"asid", "wsid"}, "walt", ""},
				{"a.example.test", "p1", "/", []string{"asid", "wsid"}, "alice", ""},
			},
		},
		{
			name:  "a cookie domain of a host that a wildcard site on the same port covers",
			ports: []string{"p1"},
			caddyfile: `
http://a.example.test:{port:p1} {
	handle /a/* {
		session {
			store bolt {db:a}
			cookie asid {
				domain a.example.test
			}
		}
		reverse_proxy {up}
	}
}
http://*.a.example.test:{port:p1}, http://*.example.test:{port:p1} {
	session {
		store bolt {db:w}
		cookie wsid
	}
	reverse_proxy {up}
}`,
			logins: []login{{"a.example.test", "p1", "/a/", "asid", "X-Session-Set-User: alice"}, {"x.a.example.test", "p1", "/", "wsid", "X-Session-Set-User: walt"}},
			wants: []want{
				{"x.a.example.test", "p1", "/", []string{"asid", "wsid"}, "walt", ""},
				{"a.example.test", "p1", "/a/x", []string{"asid"}, "alice", ""},
			},
		},
		{
			name:  "a named route that two sites invoke, beside another session of the second",
			ports: []string{"p1"},
			caddyfile: `
&(app) {
	session {
		store bolt {db:app}
		cookie app_sid
		realm apps
	}
}
http://a.example.test:{port:p1} {
	route {
		invoke app
		reverse_proxy {up}
	}
}
http://b.example.test:{port:p1} {
	handle /b/* {
		session {
			store bolt {db:b}
			cookie b_sid
		}
		reverse_proxy {up}
	}
	handle {
		invoke app
		reverse_proxy {up}
	}
}`,
			logins: []login{{"b.example.test", "p1", "/", "app_sid", "X-Session-Set-User: alice"}, {"b.example.test", "p1", "/b/", "b_sid", "X-Session-Set-User: bob"}},
			wants: []want{
				{"b.example.test", "p1", "/", []string{"app_sid", "b_sid"}, "alice", ""},
				{"b.example.test", "p1", "/b/x", []string{"app_sid", "b_sid"}, "bob", ""},
			},
		},
		{
			name:  "a nested handler that forwards its cookie, on the paths it does not serve",
			ports: []string{"p1"},
			caddyfile: `
http://a.example.test:{port:p1} {
	session {
		store bolt {db:outer}
		cookie outer_sid
	}
	handle /admin/* {
		session {
			store bolt {db:admin}
			cookie admin_sid
			header_prefix X-Admin-
			forward_cookie
		}
		reverse_proxy {up}
	}
	handle {
		reverse_proxy {up}
	}
}`,
			logins: []login{{"a.example.test", "p1", "/", "outer_sid", "X-Session-Set-User: alice"}, {"a.example.test", "p1", "/admin/login", "admin_sid", "X-Admin-Set-User: root"}},
			wants: []want{
				{"a.example.test", "p1", "/x", []string{"outer_sid", "admin_sid"}, "alice", ""},
				{"a.example.test", "p1", "/admin/x", []string{"outer_sid", "admin_sid"}, "alice", "admin_sid"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newHostedCaddy(t, tc.ports...)
			c.load(tc.caddyfile)
			ids := map[string]string{} // cookie name: raw ID
			for _, l := range tc.logins {
				ck := c.login(l.host, l.port, l.path, l.cookie, l.command)
				ids[l.cookie] = strings.TrimPrefix(ck, l.cookie+"=")
			}
			for _, w := range tc.wants {
				var jar []string
				for _, name := range w.send {
					jar = append(jar, name+"="+ids[name])
				}
				res, body := c.get(w.host, w.port, w.path, strings.Join(append(jar, "theme=dark"), "; "))
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s:%s%s: status %d: %s", w.host, w.port, w.path, res.StatusCode, body)
				}
				var got seen
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("%s:%s%s: %v: %s", w.host, w.port, w.path, err, body)
				}
				sent := strings.Join(got.Headers.Values("Cookie"), "; ")
				for name, id := range ids {
					if name == w.forward {
						if !strings.Contains(sent, name+"="+id) {
							t.Errorf("%s:%s%s: forward_cookie's %s did not reach the app: cookies %q", w.host, w.port, w.path, name, cookieNames(sent))
						}
						continue
					}
					if strings.Contains(sent, id) {
						t.Errorf("%s:%s%s: the app got the raw ID of the %s session", w.host, w.port, w.path, name)
					}
				}
				if !strings.Contains(sent, "theme=dark") {
					t.Errorf("%s:%s%s: the app's own cookie is gone: cookies %q", w.host, w.port, w.path, cookieNames(sent))
				}
				if u := got.Headers.Get("X-Session-User"); u != w.user {
					t.Errorf("%s:%s%s: X-Session-User = %q, want %q", w.host, w.port, w.path, u, w.user)
				}
				// Nor may the app there set any of those cookies, which
				// the browser sends to it.
				var plant []string
				for _, name := range w.send {
					plant = append(plant, "Set-Cookie: "+name+"=planted0planted0planted0planted0planted0pla; Path=/")
				}
				res, body = c.get(w.host, w.port, w.path, strings.Join(append(jar, "theme=dark"), "; "), plant...)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s:%s%s: status %d: %s", w.host, w.port, w.path, res.StatusCode, body)
				}
				for _, ck := range res.Cookies() {
					if ck.Value == "planted0planted0planted0planted0planted0pla" {
						t.Errorf("%s:%s%s: the app set the %s cookie", w.host, w.port, w.path, ck.Name)
					}
				}
			}
		})
	}
}
