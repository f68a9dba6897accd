package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// send is get with a method and a body.
func (c *hostedCaddy) send(method, host, port, path, cookie, body string, commands ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", c.ports[port], path), strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Host = host
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for _, cmd := range commands {
		req.Header.Add("Test-Header", cmd)
	}
	res, err := c.tester.Client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	assertNoNamespace(c.t, res.Header)
	return res, string(b)
}

// TestNoErrorRouteSetsASessionCookie: the session's guard in the
// error routes (session_errors) removes from what an error route answers
// the app's Set-Cookie of a session cookie, as the session handler does
// for the app's answers: an error route that proxies to an app (the
// site's own, or another app's error pages) would otherwise plant an ID
// of the app's choosing in the browser, or remove the user's. The app's
// other cookies go through.
func TestNoErrorRouteSetsASessionCookie(t *testing.T) {
	const planted = "planted0planted0planted0planted0planted0pla"
	type step struct {
		method, host, port, path, body string
		plant                          string // the session cookie the app sets
		status                         int
	}
	cases := []struct {
		name      string
		ports     []string
		caddyfile string
		steps     []step
	}{
		{
			name:  "the site's own cookie, on an error after the session handler",
			ports: []string{"p1"},
			caddyfile: `
http://a.example.test:{port:p1} {
	session {
		store bolt {db:a}
		cookie asid
	}
	handle /boom {
		error "boom" 500
	}
	reverse_proxy {up}
	handle_errors {
		reverse_proxy {up}
	}
}`,
			steps: []step{{method: "GET", host: "a.example.test", port: "p1", path: "/boom", plant: "asid", status: http.StatusOK}},
		},
		{
			name:  "the site's own cookie, on an error before the session handler",
			ports: []string{"p1"},
			caddyfile: `
http://a.example.test:{port:p1} {
	request_body {
		max_size 4
	}
	session {
		store bolt {db:a}
		cookie asid
	}
	reverse_proxy {up}
	handle_errors {
		request_body {
			set "error"
		}
		reverse_proxy {up}
	}
}`,
			steps: []step{{method: "POST", host: "a.example.test", port: "p1", path: "/", body: "more than four bytes", plant: "asid", status: http.StatusOK}},
		},
		{
			name:  "another site's cookie that browsers send to the host",
			ports: []string{"p1", "p2"},
			caddyfile: `
http://a.example.test:{port:p1} {
	session {
		store bolt {db:a}
		cookie asid
	}
	reverse_proxy {up}
}
http://a.example.test:{port:p2} {
	session {
		store bolt {db:b}
		cookie bsid
	}
	handle /boom {
		error "boom" 500
	}
	reverse_proxy {up}
	handle_errors {
		reverse_proxy {up}
	}
}`,
			steps: []step{
				{method: "GET", host: "a.example.test", port: "p2", path: "/boom", plant: "asid", status: http.StatusOK},
				{method: "GET", host: "a.example.test", port: "p2", path: "/boom", plant: "bsid", status: http.StatusOK},
			},
		},
		{
			name:  "a session written in handle_errors",
			ports: []string{"p1"},
			caddyfile: `
http://a.example.test:{port:p1} {
	handle /boom {
		error "boom" 500
	}
	respond "ok"
	handle_errors {
		session {
			store bolt {db:a}
			cookie asid
		}
		reverse_proxy {up}
	}
}`,
			steps: []step{{method: "GET", host: "a.example.test", port: "p1", path: "/boom", plant: "asid", status: http.StatusOK}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newHostedCaddy(t, tc.ports...)
			c.load(tc.caddyfile)
			for _, st := range tc.steps {
				for _, plant := range []string{st.plant + "=" + planted + "; Path=/", " " + st.plant + " =; Max-Age=0"} {
					res, body := c.send(st.method, st.host, st.port, st.path, "", st.body,
						"Set-Cookie: "+plant, "Set-Cookie: theme=dark; Path=/")
					if res.StatusCode != st.status {
						t.Fatalf("%s %s:%s%s: status %d, want %d: %s", st.method, st.host, st.port, st.path, res.StatusCode, st.status, body)
					}
					theme := false
					for _, ck := range res.Cookies() {
						switch ck.Name {
						case "theme":
							theme = true
						case st.plant:
							t.Errorf("%s %s:%s%s: the error route's app set the %s cookie: %q", st.method, st.host, st.port, st.path, ck.Name, setCookieNames(res))
						}
					}
					if !theme {
						t.Errorf("%s %s:%s%s: the app's own cookie is gone: %q", st.method, st.host, st.port, st.path, setCookieNames(res))
					}
				}
			}
		})
	}
}

// setCookieNames is the names of the cookies a response sets, without
// their values, which may be session IDs.
func setCookieNames(res *http.Response) []string {
	var names []string
	for _, ck := range res.Cookies() {
		names = append(names, ck.Name)
	}
	return names
}
