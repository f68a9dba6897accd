package caddysession

import "testing"

// TestCookiePrefixRulesInAnyCase: browsers match the __Host- and __Secure-
// name prefixes case-insensitively (RFC 6265bis, section 4.1.3; Chrome
// and Firefox since 2024), and refuse to store a cookie of such a name
// that breaks the prefix's rules. SECURITY.md: "the config is refused
// unless the prefix's rules hold". A name spelled __host- or __SECURE- is
// not checked: the config loads, and browsers drop every session cookie
// it issues (no Secure with secure auto over HTTP, a Domain, a Path), so
// that no one can log in, and nothing says why.
func TestCookiePrefixRulesInAnyCase(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *CookieConfig
	}{
		{"__host- without secure always", &CookieConfig{Name: "__host-sid"}},
		{"__HOST- with a domain", &CookieConfig{Name: "__HOST-sid", Secure: "always", Domain: "example.com"}},
		{"__Host- spelled __host- with a path", &CookieConfig{Name: "__host-sid", Secure: "always", Path: "/app"}},
		{"__secure- without secure always", &CookieConfig{Name: "__secure-sid"}},
		{"__SECURE- with secure never", &CookieConfig{Name: "__SECURE-sid", Secure: "never"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Cookie: tc.cfg}
			err := h.provisionSettings()
			if err == nil {
				err = h.Validate()
			}
			if err == nil {
				t.Fatalf("cookie %+v is taken; a browser refuses %q", *tc.cfg, h.cookie.IssueHeader("0123456789abcdefghijklmnopqrstuvwxyzABCDEFG", false))
			}
		})
	}
}
