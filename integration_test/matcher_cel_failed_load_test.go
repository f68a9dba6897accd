package integration_test

import (
	"net/http"
	"testing"
)

// TestCELSessionAfterAFailedLoad: when the site's handler cannot read its
// session (the store fails: a 503), a CEL session() in the site's error
// routes has no session of the site to judge by. It read instead the
// session that a placed matcher had loaded through another site's cookie
// (`session user { cookie osid }`) before the handler ran, and an admin
// of site o got site s's admin error page. It matches nothing there.
func TestCELSessionAfterAFailedLoad(t *testing.T) {
	m := newMultiSite(t, "s", "o")
	m.load([2]string{"s", `session {
		store faulty {db:s}
	}
	@portal session user {
		cookie osid
	}
	header @portal X-Portal yes
	reverse_proxy {up}
	handle_errors {
		@admins expression "session('role', 'admin')"
		respond @admins "S ADMIN ERROR" 503
		respond "S ERROR" 503
	}`}, [2]string{"o", `session {
		store bolt {db:o}
		cookie osid
	}
	reverse_proxy {up}`})
	sUser := m.login("s", "sid", "X-Session-Set-User: alice")
	oAdmin := m.login("o", "osid", "X-Session-Set-User: mallory", "X-Session-Set-Role: admin")
	t.Cleanup(func() { failReads.Store(false) })
	failReads.Store(true)
	for i, cookie := range []string{sUser + "; " + oAdmin, oAdmin + "; " + sUser} {
		res, body := m.get("s", "/admin", cookie)
		if res.StatusCode != http.StatusServiceUnavailable || body != "S ERROR" {
			t.Errorf("site s's cookie first: %v: site s's error routes gave %d %q, want 503 \"S ERROR\": their session() judged by site o's session", i == 0, res.StatusCode, body)
		}
	}
}
