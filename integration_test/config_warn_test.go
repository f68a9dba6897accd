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
//     time.
func TestConfigRiskySettingsWarnAtLoad(t *testing.T) {
	const (
		insecure = "cookie secure never on a server that serves TLS"
		appName  = "the session cookie has the name an app server gives its own cookie"
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
