package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// A header_prefix whose namespace holds a common header is refused: the
// handler removes every request header of its namespace and takes every
// response header there as a command. Through Caddy, header_prefix X-
// took X-Requested-With from the app and X-Frame-Options: DENY from the
// client, Content- took the Content-Type of the request and the
// response, Sec- the browser's Sec-Fetch-Site, Accept- its
// Accept-Language; and the app's login on such a response was refused
// as an unknown command, without a word at load time.
func TestConfigHeaderPrefixCoveringCommonHeadersIsRefused(t *testing.T) {
	refused := []string{
		"X-",
		"Content-",
		"Accept-",
		"Sec-",
		"Sec-Fetch-",
		"X-Forwarded-",
		"X.Forwarded-",
		"Access-Control-",
		"Cross-Origin-",
		"If-",
		"Set-",
		"Proxy-",
		"X-Accel-",
		"X-Frame-",
	}
	for _, prefix := range refused {
		t.Run("refused "+prefix, func(t *testing.T) {
			configRefused(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
		header_prefix %s
	}
	respond ok
}`, adminPort, freePort(t), withStore(t, ""), prefix), "caddyfile",
				fmt.Sprintf(`header_prefix "%s" covers the common header`, prefix))
		})
	}
	t.Run("refused in a session_errors guard", func(t *testing.T) {
		port := freePort(t)
		configRefused(t, fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"s": {
		"listen": [":%d"],
		"routes": [{"handle": [{"handler": "static_response", "body": "ok"}]}],
		"errors": {"routes": [{"handle": [{"handler": "session_errors", "header_prefix": "Content-"}]}]}
	}}}}
}`, adminPort, port), "json", `header_prefix "Content-" covers the common header`)
	})

	// Prefixes of the session's own still load, and the app gets its
	// ordinary headers and its session.
	for _, prefix := range []string{"X-Session-", "X-Sess-", "X-Admin-", "X-App-Session-", "Session-", "X-Auth-"} {
		t.Run("loads "+prefix, func(t *testing.T) {
			s := newSite(t, "header_prefix "+prefix)
			v := s.visitor()
			r := v.do(http.MethodGet, "/", "X-Requested-With", "XMLHttpRequest", "Sec-Fetch-Site", "same-origin",
				"Test-Header", "X-Frame-Options: DENY", "Test-Header", prefix+"Set-User: alice")
			expectStatus(t, r, http.StatusOK)
			if r.Header.Get("X-Frame-Options") != "DENY" || r.sessionCookie() == nil {
				t.Fatalf("the response lost X-Frame-Options or its login: %v", r.Header)
			}
			r = v.do(http.MethodGet, "/", "X-Requested-With", "XMLHttpRequest", "Sec-Fetch-Site", "same-origin")
			h := r.seen.Headers
			if h.Get("X-Requested-With") == "" || h.Get("Sec-Fetch-Site") == "" || h.Get(prefix+"User") != "alice" {
				t.Fatalf("the app lost an ordinary header or its session: %v", h)
			}
		})
	}
}

// Two session handlers of one server whose namespaces differ but one lies
// within the other are refused. Through Caddy, with the site's session in
// X-Session- and an admin session of its own nested in /admin/* with
// X-Session-Admin-, the app under /admin/ got the admin session's role as
// X-Session-Admin-Role, where it reads the site session's key admin-role,
// and the site session's own admin-role was removed on the way.
func TestConfigOverlappingNamespacesAreRefused(t *testing.T) {
	nested := func(outer, inner string) string {
		return fmt.Sprintf(`session {
		%%s
		header_prefix %s
	}
	handle /admin/* {
		session {
			%%s
			cookie asid
			header_prefix %s
		}
		respond admin
	}
	respond ok`, outer, inner)
	}
	siblings := func(a, b string) string {
		return fmt.Sprintf(`@a path /a/*
	session @a {
		%%s
		header_prefix %s
	}
	session {
		%%s
		cookie bsid
		header_prefix %s
	}
	respond ok`, a, b)
	}
	refused := []struct{ name, body, inner, outer string }{
		{"nested within the site's", nested("X-Session-", "X-Session-Admin-"), "X-Session-Admin-", "X-Session-"},
		{"the site's within the nested", nested("X-Session-Admin-", "X-Session-"), "X-Session-Admin-", "X-Session-"},
		{"spelled with underscores", nested("X-Session-", "X_Session_Admin-"), "X_Session_Admin-", "X-Session-"},
		{"spelled in lowercase", nested("x-session-admin-", "X-Session-"), "x-session-admin-", "X-Session-"},
		{"spelled with dots", nested("X.Session-", "X-Session-Admin-"), "X-Session-Admin-", "X.Session-"},
		{"siblings of one site", siblings("X-App-", "X-App-Admin-"), "X-App-Admin-", "X-App-"},
	}
	// One request namespace spelled with '.' in one prefix and '-' in the
	// other: requests read them as one (PHP reads '.' as '_'), responses
	// as two, and neither handler removed the other's commands. Through
	// Caddy, the app behind a nested `header_prefix X.Session-` with
	// `writable note` answered X-Session-Set-Role: admin, and the site's
	// handler applied it: the role past the nested handler's writable.
	dotted := []struct{ name, body, a, b string }{
		{"nested with a dot", nested("X-Session-", "X.Session-"), "X-Session-", "X.Session-"},
		{"the site's with a dot", nested("X.Session-", "X-Session-"), "X.Session-", "X-Session-"},
		{"siblings with a dot", siblings("X.App-", "x-app-"), "X.App-", "x-app-"},
	}
	for _, c := range dotted {
		t.Run(c.name, func(t *testing.T) {
			body := fmt.Sprintf(c.body, withStore(t, ""), withStore(t, ""))
			// The error names the two in sorted order.
			a, b := min(c.a, c.b), max(c.a, c.b)
			configRefused(t, fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\t%s\n}", adminPort, freePort(t), body),
				"caddyfile", fmt.Sprintf(`header_prefix "%s" and "%s" of two session handlers on the same server differ in '.' against '-'`, a, b))
		})
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			body := fmt.Sprintf(c.body, withStore(t, ""), withStore(t, ""))
			configRefused(t, fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\t%s\n}", adminPort, freePort(t), body),
				"caddyfile", fmt.Sprintf(`header_prefix "%s" of one session handler lies within header_prefix "%s" of another on the same server`, c.inner, c.outer))
		})
	}

	// Namespaces that are disjoint, or one namespace in two spellings,
	// or overlapping ones on two servers, still load and serve.
	loads := []struct{ name, body string }{
		{"disjoint", nested("X-Session-", "X-Admin-")},
		{"disjoint, neither a prefix of the other", nested("X-Session-Admin-", "X-Session-User-")},
		{"one namespace in two spellings", nested("X-Session-", "x_session-")},
	}
	for _, c := range loads {
		t.Run(c.name, func(t *testing.T) {
			tester := caddytest.NewTester(t)
			port := freePort(t)
			body := fmt.Sprintf(c.body, withStore(t, ""), withStore(t, ""))
			tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n}\nhttp://127.0.0.1:%d {\n\t%s\n}", adminPort, freePort(t), port, body), "caddyfile")
			tester.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/admin/x", port), http.StatusOK, "admin")
		})
	}
	t.Run("on two sites of one port", func(t *testing.T) {
		tester := caddytest.NewTester(t)
		port := freePort(t)
		tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
}
http://shop.localhost:%d {
	session {
		%s
		header_prefix X-Session-
	}
	respond shop
}
http://admin.localhost:%d {
	session {
		%s
		cookie asid
		header_prefix X-Session-Admin-
	}
	respond admin
}`, adminPort, freePort(t), port, withStore(t, ""), port, withStore(t, "")), "caddyfile")
		res, body := getFrom(t, tester, port, "admin.localhost", "/", "")
		if res.StatusCode != http.StatusOK || string(body) != "admin" {
			t.Fatalf("the admin site answered %d %q", res.StatusCode, body)
		}
	})
	t.Run("on two servers", func(t *testing.T) {
		tester := caddytest.NewTester(t)
		p1, p2 := freePort(t), freePort(t)
		tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
}
http://127.0.0.1:%d {
	session {
		%s
		header_prefix X-Session-
	}
	respond one
}
http://127.0.0.1:%d {
	session {
		%s
		header_prefix X-Session-Admin-
	}
	respond two
}`, adminPort, freePort(t), p1, withStore(t, ""), p2, withStore(t, "")), "caddyfile")
		tester.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/", p2), http.StatusOK, "two")
	})
}

// configRefused loads a config through the admin API, as caddytest does,
// and fails unless Caddy refuses it with an error that contains want. It
// does what caddytest.AssertLoadError does, which panics on a config that
// loads.
func configRefused(t *testing.T, config, adapter, want string) {
	t.Helper()
	err := loadStarted(t, config, adapter)
	if err == nil {
		t.Fatalf("the config loaded, want it refused with %q", want)
	}
	if got := strings.ReplaceAll(err.Error(), `\"`, `"`); !strings.Contains(got, want) {
		t.Fatalf("the config was refused with %s, want %q", err, want)
	}
}
