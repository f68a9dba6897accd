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

// derivedSites is a Caddy with the sites of config on one port, the
// requests of a test sent to them by Host.
type derivedSites struct {
	t      *testing.T
	tester *caddytest.Tester
	port   int
}

// newDerivedSites starts config, with $PORT, $DB (one bolt file for all
// its sites) and $A, the app.
func newDerivedSites(t *testing.T, config string) *derivedSites {
	t.Helper()
	app := startUpstream(t)
	d := &derivedSites{t: t, tester: caddytest.NewTester(t), port: freePort(t)}
	d.tester.Client.Jar = nil
	cfg := strings.NewReplacer(
		"$PORT", fmt.Sprint(d.port),
		"$DB", filepath.Join(t.TempDir(), "sessions.db"),
		"$A", app.addr(),
	).Replace(config)
	d.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n\tskip_install_trust\n}\n%s\n",
		adminPort, d.port, freePort(t), cfg), "caddyfile")
	return d
}

// derivedAnswer is what a request through derivedSites got: the status,
// the sid cookie it set ("" none), and what the app saw (nothing if no
// app answered).
type derivedAnswer struct {
	status int
	sid    string
	seen   seen
}

// do sends a request to host with the cookie sid (if any), the header
// pairs headers, and the app's orders commands.
func (d *derivedSites) do(host, method, path, sid string, headers []string, commands ...string) derivedAnswer {
	d.t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", d.port, path), nil)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Host = host
	if sid != "" {
		req.Header.Set("Cookie", "sid="+sid)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	res, err := d.tester.Client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	a := derivedAnswer{status: res.StatusCode}
	for _, c := range res.Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			a.sid = c.Value
		}
	}
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a.seen); err != nil {
			d.t.Fatalf("%s %s %s: no app answered: %d %q", host, method, path, res.StatusCode, body)
		}
	}
	return a
}

// browser is one browser's cookie for one host, as it keeps it.
type browser struct {
	d    *derivedSites
	host string
	sid  string
}

func (b *browser) do(method, path string, headers []string, commands ...string) derivedAnswer {
	b.d.t.Helper()
	a := b.d.do(b.host, method, path, b.sid, headers, commands...)
	if a.sid != "" {
		b.sid = a.sid
	}
	return a
}

// token is the CSRF token the app gets on a page of the browser's
// session.
func (b *browser) token() string {
	b.d.t.Helper()
	tok := b.do(http.MethodGet, "/page", nil).seen.Headers.Get("X-Session-Meta-Csrf-Token")
	if tok == "" {
		b.d.t.Fatalf("%s: the app got no csrf token", b.host)
	}
	return tok
}

// TestCSRFTokenIsOfItsSessionAndSite: the CSRF token a page was rendered
// with opens only the session (the ID) and the site it was derived for,
// on a Caddy whose sites share one store: a token of another site's
// session, of the session the browser had before a login as another
// user, before a logout and a new login, or before a renewal is refused
// (README: a page rendered before holds the old token, which is
// refused); the session's current token is accepted.
func TestCSRFTokenIsOfItsSessionAndSite(t *testing.T) {
	const config = `
http://a.localhost:$PORT {
	session {
		store bolt $DB
		csrf {
			token
		}
	}
	reverse_proxy $A
}
http://b.localhost:$PORT {
	session {
		store bolt $DB
		csrf {
			token
		}
	}
	reverse_proxy $A
}`
	same := []string{"Sec-Fetch-Site", "same-origin"}
	rows := []struct {
		name string
		// stale returns the token a page showed, then leaves the
		// browser b on a session the token is not of
		stale func(t *testing.T, d *derivedSites, b *browser) string
	}{
		{"another site's token, of the same user, from one store", func(t *testing.T, d *derivedSites, b *browser) string {
			other := &browser{d: d, host: "b.localhost"}
			other.do(http.MethodGet, "/login", nil, "X-Session-Set-User: alice")
			return other.token()
		}},
		{"another site's token, the same browser's ID sent to it", func(t *testing.T, d *derivedSites, b *browser) string {
			// The ID of a.localhost at b.localhost is no session there:
			// its token opens nothing at b, and b's own does not at a.
			other := &browser{d: d, host: "b.localhost", sid: b.sid}
			other.do(http.MethodGet, "/login", nil, "X-Session-Set-User: alice")
			if other.sid == b.sid {
				t.Fatal("b.localhost adopted a.localhost's session ID")
			}
			return other.token()
		}},
		{"before a login as another user", func(t *testing.T, d *derivedSites, b *browser) string {
			tok := b.token()
			b.do(http.MethodGet, "/login", nil, "X-Session-Set-User: bob")
			return tok
		}},
		{"before a logout and a new login", func(t *testing.T, d *derivedSites, b *browser) string {
			tok := b.token()
			b.do(http.MethodGet, "/logout", nil, "X-Session-Destroy: true")
			b.sid = ""
			b.do(http.MethodGet, "/login", nil, "X-Session-Set-User: alice")
			return tok
		}},
		{"before a renewal", func(t *testing.T, d *derivedSites, b *browser) string {
			tok := b.token()
			b.do(http.MethodGet, "/renew", nil, "X-Session-Renew: true")
			return tok
		}},
		{"before a remember me", func(t *testing.T, d *derivedSites, b *browser) string {
			tok := b.token()
			b.do(http.MethodGet, "/remember", nil, "X-Session-Remember: true")
			return tok
		}},
	}
	d := newDerivedSites(t, config)
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			b := &browser{d: d, host: "a.localhost"}
			b.do(http.MethodGet, "/login", nil, "X-Session-Set-User: alice")
			if b.sid == "" {
				t.Fatal("the login issued no cookie")
			}
			stale := row.stale(t, d, b)
			if b.sid == "" {
				t.Fatal("the browser has no session")
			}
			user := b.do(http.MethodGet, "/page", nil).seen.Headers.Get("X-Session-User")
			if a := b.do(http.MethodPost, "/transfer", append([]string{"X-CSRF-Token", stale}, same...), "X-Session-Set-Cart: stolen"); a.status != http.StatusForbidden {
				t.Errorf("a POST of %s's session with a token it was not derived for got %d, want 403", user, a.status)
			}
			if cart := b.do(http.MethodGet, "/page", nil).seen.Headers.Get("X-Session-Cart"); cart != "" {
				t.Errorf("the refused POST changed the session: cart %q", cart)
			}
			if a := b.do(http.MethodPost, "/transfer", append([]string{"X-CSRF-Token", b.token()}, same...)); a.status != http.StatusOK {
				t.Errorf("a POST with the session's own token got %d, want 200", a.status)
			}
		})
	}
}
