package integration_test

// The spoofs of TestAppServerSpoofedSessionHeaders, and the session
// cookie in the forms a client may send it, through php_fastcgi to
// php-fpm: the one app server of the README that the spoof suite did not
// run. Caddy's FastCGI transport turns each request header into
// HTTP_<NAME> with '-' read as '_', and PHP reads '.' as '_' too when it
// fills $_SERVER; getallheaders() gives the names back from those keys.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// phpReportScript answers with the session commands of its query (each
// h=Name:value, repeatable, sent with header() as another line of that
// name) and reports what PHP saw: every HTTP_* key of $_SERVER,
// getallheaders() and $_COOKIE.
const phpReportScript = `<?php
foreach (explode('&', $_SERVER['QUERY_STRING'] ?? '') as $pair) {
	if (str_starts_with($pair, 'h=')) {
		[$name, $value] = explode(':', urldecode(substr($pair, 2)), 2);
		header("$name: $value", false);
	}
}
$server = [];
foreach ($_SERVER as $k => $v) {
	if (str_starts_with($k, 'HTTP_')) {
		$server[substr($k, 5)] = $v;
	}
}
header('Content-Type: application/json');
echo json_encode(['server' => $server, 'headers' => getallheaders(), 'cookies' => $_COOKIE], JSON_FORCE_OBJECT);
`

// phpReport is what phpReportScript saw.
type phpReport struct {
	Server  map[string]string `json:"server"`
	Headers map[string]string `json:"headers"`
	Cookies map[string]any    `json:"cookies"`
}

// namespace returns the session as PHP reads it from $_SERVER and from
// getallheaders(), each key lowercase with '_' and '.' as '-', less the
// prefix; the test requires the two views to agree.
func (r phpReport) namespace(t *testing.T) map[string]string {
	t.Helper()
	fold := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for name, v := range m {
			folded := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
			if key, ok := strings.CutPrefix(folded, "x-session-"); ok {
				if prev, dup := out[key]; dup {
					v = prev + " | " + v
				}
				out[key] = v
			}
		}
		return out
	}
	server, headers := fold(r.Server), fold(r.Headers)
	if !maps.Equal(server, headers) {
		t.Fatalf("$_SERVER holds the session %v, getallheaders() %v", server, headers)
	}
	return server
}

// phpSites loads one Caddy, under these global options, with two sites
// that serve phpReportScript for every path with php_fastcgi to a php-fpm
// of the test's: the first with the session handler, the second without
// it (the app as it would be without the plugin).
func phpSites(t *testing.T, app *phpApp, globals string) (withSessions, without *site) {
	t.Helper()
	tester := caddytest.NewTester(t)
	tester.Client.Jar = nil
	withSessions = &site{t: t, tester: tester, port: freePort(t), db: filepath.Join(t.TempDir(), "sessions.db")}
	without = &site{t: t, tester: tester, port: freePort(t)}
	serve := fmt.Sprintf("root * %s\n\tphp_fastcgi %s {\n\t\ttry_files index.php\n\t}", app.root, app.fpm.addr)
	withSessions.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
	%s
}
http://127.0.0.1:%d {
	session {
		store bolt %s
	}
	%s
}
http://127.0.0.1:%d {
	%s
}
`, adminPort, withSessions.port, freePort(t), globals, withSessions.port, withSessions.db, serve, without.port, serve))
	waitOneListener(t, without.port)
	return withSessions, without
}

// phpExchange sends GET /report with these header lines, as given (each
// "\n" a CRLF), and returns what PHP saw and the body as sent. Nothing of
// the namespace may reach the client.
func phpExchange(t *testing.T, s *site, lines string) (phpReport, string) {
	t.Helper()
	raw := "GET /report HTTP/1.1\r\n" + strings.ReplaceAll(lines, "\n", "\r\n") + "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
	res, body, err := rawExchange(t, s, raw)
	if err != nil {
		t.Fatal(err)
	}
	assertNoneLeaked(t, res)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", res.StatusCode, body)
	}
	var report phpReport
	if err := json.Unmarshal(body, &report); err != nil {
		t.Fatalf("PHP's report %q: %v", body, err)
	}
	return report, string(body)
}

// phpLogin logs a visitor in as alice through the PHP app and returns its
// session ID.
func phpLogin(t *testing.T, s *site) string {
	t.Helper()
	v := s.visitor()
	r := v.get("/login?h=" + "X-Session-Set-User%3Aalice")
	if r.StatusCode != http.StatusOK || v.sid == "" {
		t.Fatalf("the login through PHP answered %d with cookies %q", r.StatusCode, r.Header.Values("Set-Cookie"))
	}
	return v.sid
}

// TestPHPSpoofedSessionHeaders: the spoofed spellings of the app-server
// suite, sent to a PHP app under Caddy's defaults and with names holding
// '_' and '.' let through, with and without a session: PHP sees the
// visitor's own session in $_SERVER and getallheaders(), and nothing
// else of the namespace. The rows with a chunked body are left out:
// php_fastcgi answers a body of no declared length 411, and FastCGI has
// no trailers. Without the session handler each row reaches PHP under
// one of the two configurations, so each row shows the plugin at work.
func TestPHPSpoofedSessionHeaders(t *testing.T) {
	app := startPHPApp(t)
	app.write("index.php", phpReportScript)
	var rows []spoofRow
	for _, row := range spoofedSpellings {
		if row.body == "" {
			rows = append(rows, row)
		}
	}
	reached := map[string]bool{}
	for _, caddy := range spoofConfigs {
		t.Run(caddy.name, func(t *testing.T) {
			s, bare := phpSites(t, app, caddy.globals)
			for _, loggedIn := range []bool{false, true} {
				for _, row := range rows {
					t.Run(fmt.Sprintf("%s (session %v)", row.name, loggedIn), func(t *testing.T) {
						s := *s
						s.t = t
						lines, want := row.raw, map[string]string{}
						if loggedIn {
							lines += "Cookie: sid=" + phpLogin(t, &s) + "\n"
							want = map[string]string{"user": "alice"}
						}
						report, _ := phpExchange(t, &s, lines)
						if got := report.namespace(t); !maps.Equal(got, want) {
							t.Fatalf("PHP saw the session %v, want %v", got, want)
						}
						b := *bare
						b.t = t
						if report, _ := phpExchange(t, &b, row.raw); len(report.namespace(t)) > 0 {
							reached[row.name] = true
						}
					})
				}
			}
		})
	}
	for _, row := range rows {
		if reached[row.name] == row.spoofsNothing {
			t.Errorf("%s: without the plugin, the spoof reached PHP: %v; want %v", row.name, reached[row.name], !row.spoofsNothing)
		}
	}
}

// TestPHPNeverGetsTheSessionID: the session cookie, in the forms a client
// may send it, is gone from what PHP gets ($_COOKIE, HTTP_COOKIE,
// getallheaders()), and the other cookies stay; the session reaches PHP
// as headers where the plugin reads the cookie as the session (not "sid
// =", which it removes all the same, since parsers trim the name).
func TestPHPNeverGetsTheSessionID(t *testing.T) {
	app := startPHPApp(t)
	app.write("index.php", phpReportScript)
	s, _ := phpSites(t, app, "")
	for _, row := range []struct {
		name    string
		cookies func(id string) string // header lines
		kept    map[string]string      // $_COOKIE afterwards
		unread  bool                   // the plugin does not read it as the session
	}{
		{"alone", func(id string) string { return "Cookie: sid=" + id + "\n" }, map[string]string{}, false},
		{"among others", func(id string) string { return "Cookie: a=1; sid=" + id + "; b=2\n" }, map[string]string{"a": "1", "b": "2"}, false},
		{"quoted", func(id string) string { return `Cookie: a=1; sid="` + id + `"` + "\n" }, map[string]string{"a": "1"}, false},
		{"twice", func(id string) string { return "Cookie: sid=" + id + "; a=1; sid=" + id + "\n" }, map[string]string{"a": "1"}, false},
		{"on a Cookie line of its own", func(id string) string { return "Cookie: a=1\nCookie: sid=" + id + "\n" }, map[string]string{"a": "1"}, false},
		{"with a space before =", func(id string) string { return "Cookie: a=1; sid =" + id + "\n" }, map[string]string{"a": "1"}, true},
		{"after a tab", func(id string) string { return "Cookie: a=1;\tsid=" + id + "\n" }, map[string]string{"a": "1"}, false},
	} {
		t.Run(row.name, func(t *testing.T) {
			s := *s
			s.t = t
			id := phpLogin(t, &s)
			report, body := phpExchange(t, &s, row.cookies(id))
			if strings.Contains(body, id) {
				t.Fatalf("the session ID reached PHP: %s", strings.ReplaceAll(body, id, "<the session ID>"))
			}
			got := map[string]string{}
			for k, v := range report.Cookies {
				got[k] = fmt.Sprint(v)
			}
			if !maps.Equal(got, row.kept) {
				t.Fatalf("PHP's $_COOKIE is %v, want %v", got, row.kept)
			}
			want := map[string]string{"user": "alice"}
			if row.unread {
				want = map[string]string{}
			}
			if got := report.namespace(t); !maps.Equal(got, want) {
				t.Fatalf("PHP saw the session %v, want %v", got, want)
			}
		})
	}
}
