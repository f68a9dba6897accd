package integration_test

import (
	"strings"
	"testing"
)

// A nested session handler of the site's store, cookie and realm adopts
// the load of the site's handler: that one has taken the cookie off the
// request. A session matcher or handler of another cookie, realm or store
// that loads in between must not take that load's place, or the nested
// handler finds no load to adopt and no cookie to read, serves the user as
// anonymous, and a write there starts a session that replaces the user's
// cookie.
func TestNestedHandlerAdoptsPastOtherLoads(t *testing.T) {
	tests := []struct {
		name    string
		between string // what loads between the site's handler and the nested one
	}{
		{name: "a handler of another cookie", between: `session {
					store bolt {db:other}
					cookie osid
				}`},
		{name: "a handler of another realm", between: `session {
					store bolt {db:shared}
					realm elsewhere
				}`},
		{name: "a matcher of another site's cookie", between: `@other session user {
					cookie osid
				}
				header @other X-Other-User yes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMultiSite(t, "s", "o")
			m.load([2]string{"s", `session {
				store bolt {db:shared}
			}
			route /admin/* {
				` + tc.between + `
				session {
					store bolt {db:shared}
					idle_timeout 1h
				}
				reverse_proxy {up}
			}
			reverse_proxy {up}`}, [2]string{"o", `session {
				store bolt {db:other}
				cookie osid
			}
			reverse_proxy {up}`})
			cookie := m.login("s", "sid", "X-Session-Set-User: admin")
			res, body := m.get("s", "/admin/", cookie, "X-Session-Set-Seen: admin")
			if !strings.Contains(body, `"X-Session-User":["admin"]`) {
				t.Errorf("the nested handler served the session as anonymous: %s", body)
			}
			if c := res.Cookies(); len(c) != 0 {
				t.Errorf("a write under the nested handler replaced the user's cookie: %v", c)
			}
			if _, body := m.get("s", "/", cookie); !strings.Contains(body, `"X-Session-Seen":["admin"]`) {
				t.Errorf("the nested handler's write did not land in the user's session: %s", body)
			}
		})
	}
}
