package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCookieAttributes follows a partitioned cookie with a priority
// through a real Caddy: the cookie that removes it at logout carries the
// same attributes, without which a browser would leave the partitioned
// cookie in place.
func TestCookieAttributes(t *testing.T) {
	s := newSite(t, `cookie {
			secure always
			same_site none
			partitioned
			priority high
		}`)
	v := s.visitor()
	const attrs = "; Path=/; HttpOnly; Secure; SameSite=None; Partitioned; Priority=High"

	r := v.get("/login", "X-Session-Set-User: alice")
	expectStatus(t, r, http.StatusOK)
	if got, want := r.Header.Get("Set-Cookie"), "sid="+v.sid+attrs; v.sid == "" || got != want {
		t.Fatalf("login: Set-Cookie %q, want %q", got, want)
	}
	r = v.get("/logout", "X-Session-Destroy: true")
	expectStatus(t, r, http.StatusOK)
	got := r.Header.Get("Set-Cookie")
	want := "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0" + strings.TrimPrefix(attrs, "; Path=/")
	if got != want {
		t.Fatalf("logout: Set-Cookie %q, want %q", got, want)
	}
}
