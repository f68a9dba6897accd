package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A site may guard one part of itself more strictly with a session
// handler of its own: here /admin binds its sessions to the User-Agent,
// while the site's top-level session, which every request passes first,
// does not. Both handlers share store, cookie and realm, so the inner one
// adopts the session the outer one loaded (Handler.requestState: "Loaded
// by a matcher through another handler of the same store and realm"),
// without its own checks: the binding is never checked, and a request
// from another User-Agent with the admin's cookie reaches /admin as the
// admin. SECURITY.md: a request from another User-Agent "is served as
// anonymous ... and cannot end, write to or rotate the session".
func TestNestedHandlerChecksItsOwnBinding(t *testing.T) {
	m := newMultiSite(t, "s")
	m.load([2]string{"s", `session {
		store bolt {db:shared}
	}
	handle /admin/* {
		session {
			store bolt {db:shared}
			bind user_agent
		}
		reverse_proxy {up}
	}
	reverse_proxy {up}`})

	do := func(userAgent, cookie string, commands ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/admin/", m.ports["s"]), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", userAgent)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		for _, c := range commands {
			req.Header.Add("Test-Header", c)
		}
		res, err := m.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	res, _ := do(firefox, "", "X-Session-Set-User: admin")
	var cookie string
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			cookie = "sid=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("the login issued no cookie")
	}
	if _, body := do(firefox, cookie); !strings.Contains(body, `"X-Session-User":["admin"]`) {
		t.Fatalf("the admin's own browser does not get the session: %s", body)
	}
	if _, body := do("curl/8.5.0", cookie); strings.Contains(body, "X-Session-User") {
		t.Fatalf("a request from another User-Agent with the admin's cookie reached /admin, bound to the User-Agent, as the admin: %s", body)
	}
}
