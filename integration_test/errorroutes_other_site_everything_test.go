package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// README.md, "Error routes": an error of a site with no error routes of
// its own goes to another site's of the port (a catch-all's, a wildcard
// site's), and "a session handler whose errors may reach them takes the
// session it forwarded (its keys, signed token, devices list, CSRF token,
// flash values and, with forward_cookie, the cookie) off the request ...;
// the session's placeholders (`{http.session.*}`, `{http.session_hash}`,
// `{http.session_meta.csrf_token}`) read empty there". The tests of that
// promise run with keys and a signed token only; here the handler also
// forwards a devices list, a CSRF token, a flash value and the cookie,
// and the other site's error route reads the placeholders. The site's own
// error route, the control, gets them all.
func TestErrorRoutesOfAnotherSiteGetNothingOfTheSession(t *testing.T) {
	const handler = `handle /app/* {
		session {
			store bolt $DB
			forward_cookie
			devices /app/*
			csrf {
				token
			}
			sign {
				secret 0123456789abcdef0123456789abcdef
			}
		}
		error /app/boom 500
		reverse_proxy $A
	}`
	const reads = `reverse_proxy $C {
			header_up Test-Placeholder "u=[{http.session.user}] h=[{http.session_hash}] c=[{http.session_meta.csrf_token}]"
		}`
	rows := []struct {
		name, config, errURI string
		own                  bool // the error route is the site's own, which gets the session
	}{
		{"a catch-all site's handle_errors", `
http://a.localhost:$PORT {
	` + handler + `
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /other-error
		` + reads + `
	}
}`, "/other-error", false},
		{"a wildcard site's handle_errors", `
http://a.localhost:$PORT {
	` + handler + `
}
http://*.localhost:$PORT {
	respond "wildcard"
	handle_errors {
		rewrite * /other-error
		` + reads + `
	}
}`, "/other-error", false},
		{"the site's own handle_errors (control)", `
http://a.localhost:$PORT {
	` + handler + `
	handle_errors {
		rewrite * /own-error
		` + reads + `
	}
}
http://:$PORT {
	respond "catch-all"
	handle_errors {
		rewrite * /other-error
		` + reads + `
	}
}`, "/own-error", true},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			appA, appC := startUpstream(t), startUpstream(t)
			port := freePort(t)
			config := strings.NewReplacer(
				"$PORT", fmt.Sprint(port),
				"$DB", filepath.Join(t.TempDir(), "sessions.db"),
				"$A", appA.addr(), "$C", appC.addr(),
			).Replace(tc.config)
			tester := caddyOnPort(t, port, config)
			do := func(path, cookie string, commands ...string) (*http.Response, seen) {
				t.Helper()
				// A page the browser navigates to, which takes flash values.
				headers := []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
				for _, c := range commands {
					headers = append(headers, "Test-Header", c)
				}
				res, body := sendTo(t, tester, port, http.MethodGet, "a.localhost", path, cookie, "", headers...)
				var s seen
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatalf("%s: no app answered: %d %q", path, res.StatusCode, body)
				}
				return res, s
			}
			res, _ := do("/app/login", "", "X-Session-Set-User: alice", "X-Session-Flash-Notice: welcome")
			var id, cookie string
			for _, c := range res.Cookies() {
				if c.Name == "sid" {
					id, cookie = c.Value, "sid="+c.Value
				}
			}
			if cookie == "" {
				t.Fatal("the login issued no sid cookie")
			}

			_, s := do("/app/boom", cookie)
			if s.URI != tc.errURI {
				t.Fatalf("the error was answered by %q, want %q", s.URI, tc.errURI)
			}
			// No flash value: an error raised by Caddy (error) puts them
			// back, and the error routes get the request without them
			// (README, "Flash values"); that is checked below.
			forwarded := []string{"X-Session-User", "X-Session-Meta-Token", "X-Session-Meta-Devices", "X-Session-Meta-Csrf-Token"}
			placeholders := s.Headers.Get("Test-Placeholder")
			if tc.own {
				// The control: every feature was on, and the site's own
				// error route gets the session.
				for _, name := range forwarded {
					if s.Headers.Get(name) == "" {
						t.Errorf("the site's own error route did not get %s", name)
					}
				}
				if strings.Contains(placeholders, "[]") {
					t.Errorf("the site's own error route read an empty session placeholder: %q", placeholders)
				}
				return
			}
			for name := range s.Headers {
				if strings.HasPrefix(strings.ToLower(name), "x-session-") {
					t.Errorf("another site's error route got %s", name)
				}
			}
			if strings.Contains(strings.Join(s.Headers.Values("Cookie"), ";"), id) {
				t.Errorf("another site's error route got the raw session ID in Cookie")
			}
			// Empty, or left as written: Caddy's header_up leaves a
			// placeholder that nothing on the request knows as it is.
			unread := "u=[{http.session.user}] h=[{http.session_hash}] c=[]"
			if placeholders != "u=[] h=[] c=[]" && placeholders != unread {
				t.Errorf("another site's error route read the session's placeholders: %d bytes, want %q", len(placeholders), unread)
			}
			// The flash value went to no error route: it was put back,
			// and the site's own app gets it on the next page.
			_, s = do("/app/page", cookie)
			if got := s.Headers.Get("X-Session-User"); got != "alice" {
				t.Fatalf("after the error the site's app sees user %q, want alice", got)
			}
			if s.Headers.Get("X-Session-Flash-Notice") != "welcome" {
				t.Errorf("the flash value the error put back did not reach the site's next page")
			}
		})
	}
}
