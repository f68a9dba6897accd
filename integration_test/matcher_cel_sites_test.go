package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// A CEL session() matcher has no handler of its own: it reads the
// session that a handler has loaded for the request. A placed session
// matcher may read another site's session through that site's handler
// (`session user { cookie osid }`, README "The session matcher"), and
// each load was kept as "the last loaded", which is what session() read:
// once such a matcher had run, site S's `expression session('role',
// 'admin')` judged the request by site O's session, and an admin of O,
// with no session of S at all, got S's admin area.
func TestCELSessionReadsItsOwnSite(t *testing.T) {
	layouts := []struct {
		name, s string
	}{
		{name: "the other site's matcher runs after the handler", s: `session {
		store bolt {db:s}
	}
	@portal session user {
		cookie osid
	}
	request_header @portal X-Portal yes
	@admins expression "session('role', 'admin')"
	respond @admins "S ADMIN" 200
	reverse_proxy {up}`},
		{name: "the other site's matcher runs before the handler", s: `session {
		store bolt {db:s}
	}
	@portal session user {
		cookie osid
	}
	header @portal X-Portal yes
	@admins expression "session('role', 'admin')"
	respond @admins "S ADMIN" 200
	reverse_proxy {up}`},
		{name: "the other site's matcher and session() in one route block", s: `route {
		session {
			store bolt {db:s}
		}
		@portal session user {
			cookie osid
		}
		vars @portal portal yes
		@admins expression "session('role', 'admin')"
		respond @admins "S ADMIN" 200
		reverse_proxy {up}
	}`},
		{name: "the other site's matcher beside session() in a handle", s: `session {
		store bolt {db:s}
	}
	handle /admin* {
		@portal session user {
			cookie osid
		}
		request_header @portal X-Portal yes
		@admins expression "session('role', 'admin')"
		respond @admins "S ADMIN" 200
		respond "S FORBIDDEN" 403
	}
	reverse_proxy {up}`},
	}
	for _, layout := range layouts {
		t.Run(layout.name, func(t *testing.T) {
			m := newMultiSite(t, "s", "o")
			m.load([2]string{"s", layout.s}, [2]string{"o", `session {
		store bolt {db:o}
		cookie osid
	}
	reverse_proxy {up}`})
			sUser := m.login("s", "sid", "X-Session-Set-User: alice")
			sAdmin := m.login("s", "sid", "X-Session-Set-User: root", "X-Session-Set-Role: admin")
			oAdmin := m.login("o", "osid", "X-Session-Set-User: mallory", "X-Session-Set-Role: admin")
			oUser := m.login("o", "osid", "X-Session-Set-User: bob")
			rows := []struct {
				name, cookie string
				admin        bool
			}{
				{name: "an admin of o with no session of s", cookie: oAdmin},
				{name: "a user of s who is an admin of o", cookie: sUser + "; " + oAdmin},
				{name: "a user of s who is an admin of o, cookies the other way", cookie: oAdmin + "; " + sUser},
				{name: "an admin of s", cookie: sAdmin, admin: true},
				{name: "an admin of s who is a user of o", cookie: sAdmin + "; " + oUser, admin: true},
				{name: "a user of s", cookie: sUser},
				{name: "no session", cookie: ""},
			}
			for _, row := range rows {
				res, body := m.get("s", "/admin", row.cookie)
				if got := res.StatusCode == http.StatusOK && body == "S ADMIN"; got != row.admin {
					t.Errorf("%s: site s's session('role', 'admin') gave %d %q, want admin %v", row.name, res.StatusCode, body, row.admin)
				}
				if strings.Contains(body, "mallory") || strings.Contains(body, "bob") {
					t.Errorf("%s: site o's session reached site s's app: %s", row.name, body)
				}
			}
		})
	}
}
