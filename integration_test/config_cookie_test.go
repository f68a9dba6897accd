package integration_test

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// A cookie domain that none of the site's hosts is within is refused: a
// browser drops a cookie whose Domain does not cover the host that set
// it, so every login of the site looked applied and the next request was
// anonymous (shown with net/http's cookie jar below), without a word at
// load time.
func TestConfigCookieDomainOutsideTheSiteIsRefused(t *testing.T) {
	refused := []struct{ name, hosts, domain string }{
		{"an address", "127.0.0.1", "example.com"},
		{"another domain", "app.example.com", "example.org"},
		{"a sibling", "app.example.com", "other.example.com"},
		{"a sibling, with a dot", "app.example.com", ".other.example.com"},
		{"a subdomain of the host", "example.com", "app.example.com"},
		{"two hosts, neither within", "a.example.com, b.example.com", "c.example.com"},
		{"a wildcard outside", "*.example.com", "example.org"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			sites := strings.ReplaceAll("http://"+c.hosts+":"+fmt.Sprint(port), ", ", fmt.Sprintf(":%d, http://", port))
			configRefused(t, fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
}
%s {
	session {
		%s
		cookie {
			domain %s
		}
	}
	respond ok
}`, adminPort, port, sites, withStore(t, ""), c.domain), "caddyfile",
				fmt.Sprintf(`cookie domain "%s" covers none of the session's hosts`, c.domain))
		})
	}

	loads := []struct{ name, hosts, domain string }{
		{"the parent domain", "app.example.com", "example.com"},
		{"the parent domain, with a dot", "app.example.com", ".example.com"},
		{"the host itself, in capitals", "app.example.com", "APP.example.com"},
		{"a wildcard within", "*.example.com", "example.com"},
		{"one of two hosts within", "a.example.com, b.example.org", "example.com"},
		{"no host", "", "example.com"},
	}
	for _, c := range loads {
		t.Run(c.name, func(t *testing.T) {
			port := freePort(t)
			sites := ":" + fmt.Sprint(port)
			if c.hosts != "" {
				sites = strings.ReplaceAll("http://"+c.hosts+":"+fmt.Sprint(port), ", ", fmt.Sprintf(":%d, http://", port))
			}
			tester := caddytest.NewTester(t)
			tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
}
%s {
	session {
		%s
		cookie {
			domain %s
		}
	}
	respond ok
}`, adminPort, port, sites, withStore(t, ""), c.domain), "caddyfile")
		})
	}

	// The site's own address as the domain loads, and a browser's jar
	// keeps the cookie: the session lasts.
	t.Run("the address itself, through a cookie jar", func(t *testing.T) {
		s := newSite(t, "cookie {\n\t\t\tdomain 127.0.0.1\n\t\t}")
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Jar: jar}
		login, err := http.NewRequest(http.MethodGet, s.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		login.Header.Set("Test-Header", "X-Session-Set-User: alice")
		res, err := client.Do(login)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		res, err = client.Get(s.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		buf := make([]byte, 4096)
		n, _ := res.Body.Read(buf)
		if !strings.Contains(string(buf[:n]), `"X-Session-User":["alice"]`) {
			t.Fatalf("the jar did not keep the session cookie: %s", buf[:n])
		}
	})
}
