package integration_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/internal/browsertest"
)

// TestBrowserSendsADomainCookieToAWildcardSite: in a real
// browser, a session cookie whose domain is a.localhost (set on
// a.localhost, one port) goes to a.localhost on every port, where a
// wildcard site (*.localhost) with a session of its own serves it. That
// site's app must not get it, and each site still reads its own session.
func TestBrowserSendsADomainCookieToAWildcardSite(t *testing.T) {
	slow(t, "it starts a browser in another process")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/login") {
			w.Header().Set("X-Session-Set-User", r.URL.Query().Get("user"))
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p id=user>%s</p><p id=cookie>%s</p>", html.EscapeString(r.Header.Get("X-Session-User")), html.EscapeString(r.Header.Get("Cookie")))
	}))
	t.Cleanup(app.Close)
	c := newHostedCaddy(t, "p1", "p2")
	c.load(strings.ReplaceAll(`
http://a.localhost:{port:p1} {
	session {
		store bolt {db:a}
		cookie asid {
			domain a.localhost
		}
	}
	reverse_proxy {app}
}
http://*.localhost:{port:p2} {
	handle /bare/* {
		reverse_proxy {app}
	}
	handle {
		session {
			store bolt {db:w}
			cookie wsid
		}
		reverse_proxy {app}
	}
}`, "{app}", app.Listener.Addr().String()))
	a := fmt.Sprintf("http://a.localhost:%d", c.ports["p1"])
	w := fmt.Sprintf("http://a.localhost:%d", c.ports["p2"])
	b := browsertest.Start(t)
	b.Navigate(a + "/login?user=alice")
	b.Navigate(w + "/login?user=walt")
	// The browser sends both cookies to the wildcard site's port: a path
	// there without a session handler (which README says gets what the
	// browser sends) shows it.
	b.Navigate(w + "/bare/")
	if got := b.Text("#cookie"); !strings.Contains(got, "asid=") || !strings.Contains(got, "wsid=") {
		t.Fatalf("the browser did not send both session cookies to the other port: cookies %q", cookieNames(got))
	}
	b.Navigate(w + "/page")
	if got := b.Text("#cookie"); strings.Contains(got, "asid") || strings.Contains(got, "wsid") {
		t.Errorf("the wildcard site's app got a session cookie: cookies %q", cookieNames(got))
	}
	if got := b.Text("#user"); got != "walt" {
		t.Errorf("the wildcard site's app got user %q, want walt", got)
	}
	b.Navigate(a + "/page")
	if got := b.Text("#cookie"); strings.Contains(got, "asid") || strings.Contains(got, "wsid") {
		t.Errorf("a.localhost's app got a session cookie: cookies %q", cookieNames(got))
	}
	if got := b.Text("#user"); got != "alice" {
		t.Errorf("a.localhost's app got user %q, want alice", got)
	}
}

// cookieNames is the names of the cookies of a Cookie header, without
// their values: a failure says which cookie reached the app, and logs no
// session ID.
func cookieNames(header string) []string {
	var names []string
	for _, part := range strings.Split(header, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
		if name != "" {
			names = append(names, name)
		}
	}
	return names
}
