package integration_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// newHTTPSSite starts Caddy serving https://127.0.0.1:<port> with a
// certificate of its internal CA, as users run sites: HTTP/1.1, HTTP/2
// and HTTP/3 on one port (TCP and UDP), with `session { store bolt <tmp>
// <options> }` in front of a hostileApp.
func newHTTPSSite(t *testing.T, options string) *site {
	t.Helper()
	return newHTTPSSiteWith(t, "", "", options)
}

// newHTTPSSiteWith is newHTTPSSite with more global options (globals),
// such as `order test_done first`, and routes of the site after the
// session directive ("" for none), such as nested handlers, in which
// <db> stands for the site's bolt file.
func newHTTPSSiteWith(t *testing.T, globals, routes, options string) *site {
	t.Helper()
	return newHTTPSSiteFor(t, new(hostileApp), globals, routes, options)
}

// newHTTPSSiteFor is newHTTPSSiteWith in front of app.
func newHTTPSSiteFor(t *testing.T, app http.Handler, globals, routes, options string) *site {
	t.Helper()
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      filepath.Join(t.TempDir(), "sessions.db"),
		options: options,
		up:      &upstream{httptest.NewServer(app)},
	}
	t.Cleanup(s.up.Close)
	s.store = "store bolt " + s.db
	s.tester.Client.Jar = nil
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	local_certs
	skip_install_trust
	storage file_system %s
	%s
}
https://127.0.0.1:%d {
	tls internal
	session {
		%s
		%s
	}
	%s
	reverse_proxy %s
}
`, adminPort, freePort(t), s.port, t.TempDir(), globals, s.port, s.store, s.options, strings.ReplaceAll(routes, "<db>", s.db), s.up.addr()))
	waitTLS(t, s.port)
	return s
}

// waitTLS waits until Caddy completes a TLS handshake on the port: it
// issues the site's certificate from its internal CA in the background
// after the config loads.
func waitTLS(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS handshake on port %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *site) httpsURL(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", s.port, path)
}

// h1Client, h2Client and h3Client each speak one version of HTTP to an
// HTTPS site. h3Client resumes TLS sessions from cache, which lets it send
// requests in 0-RTT early data.
func h1Client(t *testing.T) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func h2Client(t *testing.T) *http.Client {
	tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func h3Client(t *testing.T, cache tls.ClientSessionCache) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ClientSessionCache: cache}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// httpsDo sends a request over client with these Cookie fields, each sent
// as a field of its own (an HTTP/2 or HTTP/3 browser's "crumbs"), and
// header pairs.
func httpsDo(t *testing.T, client *http.Client, method, url string, cookies []string, headers ...string) *response {
	t.Helper()
	r, err := httpsTry(t, client, method, url, cookies, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// httpsTry is httpsDo that returns the error of a request that got no
// answer, for a test that may send it again.
func httpsTry(t *testing.T, client *http.Client, method, url string, cookies []string, headers ...string) (*response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	for _, c := range cookies {
		req.Header.Add("Cookie", c)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading body: %w", method, url, err)
	}
	r := &response{Response: res, body: body}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &r.seen)
	}
	assertNoNamespace(t, res.Header)
	assertNoNamespace(t, res.Trailer)
	return r, nil
}
