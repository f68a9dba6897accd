package integration_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// cookieDomainSite is a Caddyfile of one site of hosts on port, whose
// session sets its cookie for domain.
func cookieDomainSite(t *testing.T, port int, hosts, domain string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
}
http://%s:%d {
	session {
		%s
		cookie {
			domain %s
		}
	}
	reverse_proxy %s
}`, adminPort, port, hosts, port, withStore(t, ""), domain, startUpstream(t).addr())
}

// A wildcard site serves the hosts its pattern matches, and a cookie
// domain that is one of them (or above one) is within the site: a
// browser on that host keeps the cookie. The check compared the domain
// with the pattern's fixed suffix only, and refused a site *.example.com
// whose cookie is for app.example.com, one of its hosts, saying that the
// domain covers none of them. A domain that no host the pattern matches
// is within is still refused.
func TestCookieDomainOfAWildcardSite(t *testing.T) {
	loads := []struct{ pattern, domain, host string }{
		{"*.example.com", "app.example.com", "app.example.com"},
		{"*.example.com", ".app.example.com", "app.example.com"},
		{"*.app.example.com", "eu.app.example.com", "eu.app.example.com"},
		{"app.*.example.com", "app.eu.example.com", "app.eu.example.com"},
		{"app.*.example.com", "eu.example.com", "app.eu.example.com"},
		{"*.*.example.com", "a.b.example.com", "a.b.example.com"},
	}
	for _, c := range loads {
		t.Run(c.pattern+" for "+c.domain, func(t *testing.T) {
			port := freePort(t)
			if err := loadStarted(t, cookieDomainSite(t, port, c.pattern, c.domain), "caddyfile"); err != nil {
				t.Fatalf("a site %s with cookie domain %s is refused: %v", c.pattern, c.domain, err)
			}
			req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = c.host
			req.Header.Set("Test-Header", "X-Session-Set-User: alice")
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			// A browser's jar on that host keeps the cookie.
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			at := &url.URL{Scheme: "http", Host: c.host, Path: "/"}
			jar.SetCookies(at, res.Cookies())
			kept := false
			for _, k := range jar.Cookies(at) {
				kept = kept || k.Name == "sid"
			}
			if !kept {
				t.Fatalf("a cookie jar on %s dropped the sid cookie of domain %s", c.host, c.domain)
			}
		})
	}
	refused := []struct{ pattern, domain string }{
		{"*.example.com", "a.b.example.com"},
		{"*.example.com", "example.org"},
		{"app.*.example.com", "web.eu.example.com"},
		{"*.app.example.com", "example.org"},
	}
	for _, c := range refused {
		t.Run(c.pattern+" refuses "+c.domain, func(t *testing.T) {
			configRefused(t, cookieDomainSite(t, freePort(t), c.pattern, c.domain), "caddyfile",
				fmt.Sprintf(`cookie domain "%s" covers none of the session's hosts`, c.domain))
		})
	}
}

// loadStarted loads config into the tests' Caddy, started first if no
// test has yet, and returns why it was refused, if it was.
func loadStarted(t *testing.T, config, adapter string) error {
	t.Helper()
	caddytest.NewTester(t).InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\trespond ok\n}", adminPort, freePort(t)), "caddyfile")
	return loadAdapted(config, adapter)
}
