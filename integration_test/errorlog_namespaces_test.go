package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestErrorLogHoldsNoValuesOfAnyNamespace: a site with two sessions of
// two header prefixes (an app's users under X-Session-, its back office
// under X-Admin-, each with its own cookie), side by side at the site's
// top level or one nested in a route. A request that carries both
// sessions fails after both handlers forwarded them: the app cannot be
// reached (502) or a handler raises an error (500). The session_errors
// guard logs the error at error level, with the request as the handlers
// left it, and must leave out what every handler of the server forwarded,
// not only what its own did: SECURITY.md, "logs never hold a raw ID, nor
// session values at info level or above". Each row checks the whole
// process's log at debug level for the raw IDs, and its lines at info and
// above for the sessions' values, CSRF tokens and signed tokens.
func TestErrorLogHoldsNoValuesOfAnyNamespace(t *testing.T) {
	const sign = `sign {
			secret 0123456789abcdef0123456789abcdef-test-only
		}`
	rows := []struct {
		name string
		// site is the site's body; $DB, $DB2, $APP and $DEAD are filled
		// in; the admin session serves /admin/*.
		site string
		// admin: the config has the X-Admin- session.
		admin bool
	}{
		{name: "one session", site: `
	session {
		store bolt $DB
		csrf {
			token
		}
		` + sign + `
	}
	handle /admin/down {
		reverse_proxy $DEAD
	}
	handle /admin/boom {
		error "boom" 500
	}
	reverse_proxy $APP`},
		{name: "two sessions at the site's top level", admin: true, site: `
	session {
		store bolt $DB
		csrf {
			token
		}
		` + sign + `
	}
	session /admin/* {
		store bolt $DB2
		header_prefix X-Admin-
		cookie admin_sid
		csrf {
			token
		}
		` + sign + `
	}
	handle /admin/down {
		reverse_proxy $DEAD
	}
	handle /admin/boom {
		error "boom" 500
	}
	reverse_proxy $APP`},
		{name: "a second session nested in a route", admin: true, site: `
	session {
		store bolt $DB
		csrf {
			token
		}
		` + sign + `
	}
	route /admin/* {
		session {
			store bolt $DB2
			header_prefix X-Admin-
			cookie admin_sid
			realm back-office
			csrf {
				token
			}
			` + sign + `
		}
		handle /admin/down {
			reverse_proxy $DEAD
		}
		handle /admin/boom {
			error "boom" 500
		}
		reverse_proxy $APP
	}
	reverse_proxy $APP`},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			up := startUpstream(t)
			dir := t.TempDir()
			logFile := filepath.Join(dir, "caddy.log")
			port := freePort(t)
			site := strings.NewReplacer(
				"$DB2", filepath.Join(dir, "admin.db"),
				"$DB", filepath.Join(dir, "users.db"),
				"$APP", up.addr(),
				"$DEAD", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			).Replace(row.site)
			tester := caddytest.NewTester(t)
			tester.Client.Jar = nil
			tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	log {
		output file %s
		format json
		level DEBUG
		exclude http.handlers.reverse_proxy
	}
}
http://127.0.0.1:%d {%s
}
`, adminPort, port, freePort(t), logFile, port, site), "caddyfile")

			cookies := map[string]string{} // cookie name → raw ID
			send := func(path string, orders ...string) (*http.Response, seen) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range orders {
					req.Header.Add("Test-Header", o)
				}
				for name, id := range cookies {
					req.AddCookie(&http.Cookie{Name: name, Value: id})
				}
				res, err := tester.Client.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				for _, c := range res.Cookies() {
					cookies[c.Name] = c.Value
				}
				var s seen
				if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
					_ = json.Unmarshal(body, &s)
				}
				return res, s
			}

			// Both sessions, each with a value only it holds.
			secrets := map[string]string{} // what → text no line at info or above may hold
			if res, _ := send("/login", "X-Session-Set-User: alice", "X-Session-Set-Team: s3cr3t-team"); res.StatusCode != http.StatusOK || cookies["sid"] == "" {
				t.Fatalf("login: status %d, cookies %v", res.StatusCode, cookies)
			}
			secrets["a value of the users' session"] = "s3cr3t-team"
			if row.admin {
				if res, _ := send("/admin/login", "X-Admin-Set-User: root", "X-Admin-Set-Vault: s3cr3t-vault"); res.StatusCode != http.StatusOK || cookies["admin_sid"] == "" {
					t.Fatalf("admin login: status %d, cookies %v", res.StatusCode, cookies)
				}
				secrets["a value of the admin session"] = "s3cr3t-vault"
			}
			_, saw := send("/admin/page")
			prefixes := []string{"X-Session-"}
			if row.admin {
				prefixes = append(prefixes, "X-Admin-")
			}
			for _, p := range prefixes {
				token := saw.Headers.Get(p + "Meta-Csrf-Token")
				if token == "" || saw.Headers.Get(p+"Meta-Token") == "" {
					t.Fatalf("the app got no CSRF token or signed token under %s: %v", p, saw.Headers)
				}
				secrets["the CSRF token under "+p] = token
				secrets["a signed token (its header) under "+p] = p + "Meta-Token"
			}
			for name, id := range cookies {
				secrets["the raw ID of cookie "+name] = id
			}

			for _, c := range []struct {
				path   string
				status int
			}{{"/admin/down", http.StatusBadGateway}, {"/admin/boom", http.StatusInternalServerError}} {
				if res, _ := send(c.path); res.StatusCode != c.status {
					t.Fatalf("GET %s: status %d, want %d", c.path, res.StatusCode, c.status)
				}
			}

			text := waitForText(t, logFile, `"uri":"/admin/down"`, `"uri":"/admin/boom"`)
			logged := map[string]bool{}
			for _, l := range readLog(t, logFile) {
				if l.str("logger") == "http.handlers.session_errors" && l.str("level") == "error" {
					for _, p := range []string{"/admin/down", "/admin/boom"} {
						if strings.Contains(l.raw, `"uri":"`+p+`"`) {
							logged[p] = true
						}
					}
				}
				for what, secret := range secrets {
					raw := strings.HasPrefix(what, "the raw ID")
					if strings.Contains(l.raw, secret) && (raw || l.str("level") != "debug") {
						t.Errorf("a log line at %s holds %s:\n%s", l.str("level"), what, l.raw)
					}
				}
			}
			if !logged["/admin/down"] || !logged["/admin/boom"] {
				t.Errorf("the guard logged at error level: %v, want both failures; log:\n%s", logged, text)
			}
		})
	}
}
