package caddysession

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-session/caddy-session/session"
)

// build turns the configuration into the session cookie, with defaults.
func (c *CookieConfig) build() (*session.Cookie, error) {
	var cfg CookieConfig
	if c != nil {
		cfg = *c
	}
	ck := &session.Cookie{
		Name:     cfg.Name,
		Domain:   cfg.Domain,
		Path:     cfg.Path,
		SameSite: http.SameSiteLaxMode,
	}
	if ck.Name == "" {
		ck.Name = session.DefaultCookieName
	}
	if ck.Path == "" {
		ck.Path = "/"
	}
	switch strings.ToLower(cfg.Secure) {
	case "", "auto":
		ck.Secure = session.SecureAuto
	case "always":
		ck.Secure = session.SecureAlways
	case "never":
		ck.Secure = session.SecureNever
	default:
		return nil, fmt.Errorf("cookie: secure must be auto, always or never, not %q", cfg.Secure)
	}
	switch strings.ToLower(cfg.SameSite) {
	case "", "lax":
	case "strict":
		ck.SameSite = http.SameSiteStrictMode
	case "none":
		ck.SameSite = http.SameSiteNoneMode
	default:
		return nil, fmt.Errorf("cookie: same_site must be lax, strict or none, not %q", cfg.SameSite)
	}
	return ck, nil
}

// noStore keeps shared caches from storing a response that carries a
// session cookie, unless the upstream already forbade it.
func noStore(hdr http.Header) {
	for _, v := range hdr.Values("Cache-Control") {
		if strings.Contains(strings.ToLower(v), "no-store") {
			return
		}
	}
	hdr.Set("Cache-Control", "no-store")
}

// setCookie adds the session cookie to the response and keeps shared caches
// from storing the response.
func setCookie(hdr http.Header, c *http.Cookie) {
	hdr.Add("Set-Cookie", c.String())
	noStore(hdr)
}
