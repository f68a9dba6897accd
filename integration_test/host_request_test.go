package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// caddyOnPort loads sites, a Caddyfile of sites on port (named by host,
// such as http://a.localhost:<port>), into the tests' Caddy.
func caddyOnPort(t *testing.T, port int, sites string) *caddytest.Tester {
	t.Helper()
	tester := caddytest.NewTester(t)
	tester.Client.Jar = nil
	tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n%s\n",
		adminPort, port, freePort(t), sites), "caddyfile")
	return tester
}

// getFrom sends a GET for host, as a browser names its site, to the
// port, with a Cookie header and upstream commands, and returns the
// response and its body; no namespace header may reach the client.
func getFrom(t *testing.T, tester *caddytest.Tester, port int, host, path, cookie string, commands ...string) (*http.Response, []byte) {
	t.Helper()
	var headers []string
	for _, c := range commands {
		headers = append(headers, "Test-Header", c)
	}
	return sendTo(t, tester, port, http.MethodGet, host, path, cookie, "", headers...)
}

// sendTo is getFrom for any method, with a body ("" for none) and
// headers given as name, value pairs.
func sendTo(t *testing.T, tester *caddytest.Tester, port int, method, host, path, cookie, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	res, err := tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	assertNoNamespace(t, res.Header)
	return res, b
}
