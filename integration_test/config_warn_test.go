package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Settings that load, since refusing them would refuse a reasonable
// config, but that are unsafe or break the app in the common case, are
// named in a warning when the config loads:
//   - `secure never` on a site served over TLS, where it is the only
//     difference from the default: the cookie goes out without Secure,
//     and browsers send it over plain HTTP too;
//   - a session cookie named as an app server's own (PHPSESSID,
//     csrftoken, ...): the handler takes the app's cookie of that name
//     off the requests and its Set-Cookie off the responses, so the app's
//     own sessions or CSRF tokens stopped working, with no word at load
//     time;
//   - `same_site none` on a session no `csrf` checks: browsers send the
//     cookie with every cross-site request.
func TestConfigRiskySettingsWarnAtLoad(t *testing.T) {
	const (
		insecure  = "cookie secure never on a server that serves TLS"
		appName   = "the session cookie has the name an app server gives its own cookie"
		crossSite = "cookie same_site none without csrf"
	)
	cases := []struct {
		name, scheme, cookie string
		warn, notWarn        string
	}{
		{name: "secure never over TLS", scheme: "https", cookie: "cookie {\n\t\t\tsecure never\n\t\t}", warn: insecure},
		{name: "secure never over plain HTTP", scheme: "http", cookie: "cookie {\n\t\t\tsecure never\n\t\t}", notWarn: insecure},
		{name: "secure auto over TLS", scheme: "https", cookie: "", notWarn: insecure},
		{name: "secure always over TLS", scheme: "https", cookie: "cookie {\n\t\t\tsecure always\n\t\t}", notWarn: insecure},
		{name: "PHPSESSID", scheme: "http", cookie: "cookie PHPSESSID", warn: appName},
		{name: "Django's csrftoken", scheme: "http", cookie: "cookie csrftoken", warn: appName},
		{name: "Express's connect.sid", scheme: "http", cookie: "cookie connect.sid", warn: appName},
		{name: "JSESSIONID", scheme: "http", cookie: "cookie JSESSIONID", warn: appName},
		{name: "same_site none without csrf", scheme: "https", cookie: "cookie {\n\t\t\tsame_site none\n\t\t\tsecure always\n\t\t}", warn: crossSite},
		{name: "same_site none with csrf", scheme: "https", cookie: "cookie {\n\t\t\tsame_site none\n\t\t\tsecure always\n\t\t}\n\t\tcsrf", notWarn: crossSite},
		{name: "same_site lax without csrf", scheme: "https", cookie: "", notWarn: crossSite},
		{name: "the default name", scheme: "http", cookie: "", notWarn: appName},
		{name: "a name of the site's own", scheme: "http", cookie: "cookie shop_sid", notWarn: appName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logFile := filepath.Join(t.TempDir(), "caddy.log")
			port := freePort(t)
			tls := ""
			if c.scheme == "https" {
				tls = "tls internal"
			}
			// Caddy's storage, where it issues the TLS site's certificate
			// in the background: removed at the end as far as it can be,
			// since the issuance may still be writing to it.
			storage, err := os.MkdirTemp("", "caddy-session-config-warn-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(storage) })
			tester := caddytest.NewTester(t)
			tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	local_certs
	skip_install_trust
	storage file_system %s
	log {
		output file %s
		format json
		level INFO
	}
}
%s://127.0.0.1:%d {
	%s
	session {
		%s
		%s
	}
	respond ok
}`, adminPort, freePort(t), freePort(t), storage, logFile, c.scheme, port, tls, withStore(t, ""), c.cookie), "caddyfile")
			// The load has logged what it warns of by the time it
			// answers; the server's start line shows the log is this
			// config's.
			text := waitForText(t, logFile, `"server running"`)
			if c.warn != "" && !strings.Contains(text, c.warn) {
				t.Errorf("no warning %q at load:\n%s", c.warn, text)
			}
			if c.notWarn != "" && strings.Contains(text, c.notWarn) {
				t.Errorf("a warning %q for a config that needs none:\n%s", c.notWarn, text)
			}
		})
	}
}

// Two handlers of one realm and store (a `session` nested in the site's
// own) with different limits are named in a warning at load: they share
// sessions, and once the inner one's app wrote more keys than the outer
// one allows, every write of the site's app to that session (a cart, a
// renewal) was refused with "nothing changed", with a warning per
// response only. Shown through Caddy first, then the warnings.
func TestConfigSplitLimitsWarnAtLoad(t *testing.T) {
	const warning = "two session handlers of one realm and store have different limits"
	nested := func(outer, inner, innerRealm string) string {
		return fmt.Sprintf(`session {
		store bolt {db:shared}
		%s
	}
	handle /admin/* {
		session {
			store bolt {db:shared}
			%s
			%s
		}
		reverse_proxy {up}
	}
	reverse_proxy {up}`, outer, inner, innerRealm)
	}
	const three = "limits {\n\t\t\tkeys 3\n\t\t}"
	const threeInner = "limits {\n\t\t\t\tkeys 3\n\t\t\t}"

	t.Run("what goes wrong", func(t *testing.T) {
		m := newMultiSite(t, "s")
		m.load([2]string{"s", nested(three, "", "")})
		c := m.login("s", "sid", "X-Session-Set-User: alice")
		m.get("s", "/admin/x", c, "X-Session-Set-A: 1", "X-Session-Set-B: 2", "X-Session-Set-C: 3")
		m.get("s", "/", c, "X-Session-Set-Cart: 1")
		// What the warning says: the outer handler refuses the write
		// (were it applied, the warning would be stale).
		if _, body := m.get("s", "/", c); strings.Contains(body, `"X-Session-Cart":["1"]`) || !strings.Contains(body, `"X-Session-C":["3"]`) {
			t.Fatalf("want the /admin write kept and the site's refused: %s", body)
		}
	})

	cases := []struct {
		name, body string
		warn       bool
	}{
		{"the outer stricter", nested(three, "", ""), true},
		{"the inner stricter", nested("", threeInner, ""), true},
		{"the same limits", nested(three, threeInner, ""), false},
		{"the defaults", nested("", "", ""), false},
		{"another realm", nested(three, "cookie asid", "realm admin"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logFile := filepath.Join(t.TempDir(), "caddy.log")
			m := newMultiSite(t, "s")
			body := m.expand(c.body)
			port := m.ports["s"]
			m.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\tlog {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel INFO\n\t}\n}\nhttp://127.0.0.1:%d {\n%s\n}\n",
				adminPort, freePort(t), logFile, port, body), "caddyfile")
			text := waitForText(t, logFile, `"server running"`)
			if got := strings.Contains(text, warning); got != c.warn {
				t.Errorf("warned %v, want %v:\n%s", got, c.warn, text)
			}
		})
	}
}
