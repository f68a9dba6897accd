package caddysession

import (
	"strings"
	"testing"
)

// TestCookieAttributesBrowsersWouldIgnoreAreRefused: a cookie Domain or
// Path that net/http cannot write, or that a browser ignores, must refuse
// the config with a message naming the mistake. As it is, the config
// loads; net/http drops the Domain (the cookie silently becomes host-only:
// a site that shares sessions across subdomains loses them), drops bytes
// of the Path (the cookie is issued for another path than configured), or
// writes a Path without a leading '/', which browsers replace with the
// request's default path, so that the cookie set by a login under /account/
// is not the one a logout from / removes, and the browser keeps both.
func TestCookieAttributesBrowsersWouldIgnoreAreRefused(t *testing.T) {
	const id = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	rows := []struct {
		name string
		cfg  *CookieConfig
		want string // a word the Set-Cookie must hold if the config is taken
	}{
		{"domain with a port", &CookieConfig{Domain: "example.com:8443"}, "Domain=example.com:8443"},
		{"domain with a wildcard", &CookieConfig{Domain: "*.example.com"}, "Domain=*.example.com"},
		{"domain with a space", &CookieConfig{Domain: "example .com"}, "Domain=example .com"},
		{"path without a leading slash", &CookieConfig{Path: "app"}, "Path=/"},
		{"path with a semicolon", &CookieConfig{Path: "/a;b"}, "Path=/a;b"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Cookie: tc.cfg}
			err := h.provisionSettings()
			if err == nil {
				err = h.Validate()
			}
			if err != nil {
				if !strings.Contains(err.Error(), "cookie") {
					t.Errorf("refused with %q, which does not name the cookie", err)
				}
				return
			}
			got := h.cookie.IssueHeader(id, false)
			t.Errorf("config taken, and the cookie is issued as %q, without %q: the configured attribute is lost", got, tc.want)
		})
	}
}
