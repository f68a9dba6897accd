package caddysession

import (
	"fmt"
	"net/http"
	"slices"
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
		Name:        cfg.Name,
		Domain:      cfg.Domain,
		Path:        cfg.Path,
		SameSite:    http.SameSiteLaxMode,
		Partitioned: cfg.Partitioned,
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
	switch strings.ToLower(cfg.Priority) {
	case "":
	case "low":
		ck.Priority = session.PriorityLow
	case "medium":
		ck.Priority = session.PriorityMedium
	case "high":
		ck.Priority = session.PriorityHigh
	default:
		return nil, fmt.Errorf("cookie: priority must be low, medium or high, not %q", cfg.Priority)
	}
	return ck, nil
}

// noStore keeps every cache from storing a response that carries a session
// cookie: Cache-Control becomes no-store unless the upstream already said
// it, and the fields CDNs obey in place of Cache-Control are removed.
func noStore(hdr http.Header) {
	dropCacheTargets(hdr)
	if cacheControlHas(hdr, "no-store") {
		return
	}
	hdr.Set("Cache-Control", "no-store")
}

// privateToSharedCaches keeps shared caches (a CDN, a caching proxy, a
// caching handler before the session's) from storing a response to a
// request that carried a live session to the app: the app may have
// written its Cache-Control for a page that was the same for everyone,
// and a shared cache would serve one user's page to the next. The user's
// own browser may still keep it as the app said (max-age stays): only
// `private` is added, `public` and `s-maxage` (which speak only to shared
// caches) go, `Vary: Cookie` is merged in for a cache that ignores
// private, and the fields CDNs obey in place of Cache-Control are
// removed. A Cache-Control that already holds private or no-store is
// kept as it is, without an allocation: the common case of a logged-in
// page.
func privateToSharedCaches(hdr http.Header) {
	dropCacheTargets(hdr)
	if _, ok := hdr["Cache-Control"]; !ok {
		// The app said nothing: the common case, set without a merge.
		hdr["Cache-Control"] = []string{"private"}
		varyOnCookie(hdr)
		return
	}
	if cacheControlHasBare(hdr, "private") || cacheControlHas(hdr, "no-store") {
		return
	}
	cc := "private"
	for _, v := range hdr.Values("Cache-Control") {
		for v != "" {
			var directive string
			directive, v = nextDirective(v)
			directive = strings.TrimSpace(directive)
			name, _, _ := strings.Cut(directive, "=")
			if directive == "" || strings.EqualFold(name, "public") || strings.EqualFold(name, "s-maxage") ||
				strings.EqualFold(name, "private") { // private="<field>", which the bare one replaces
				continue
			}
			cc += ", " + directive
		}
	}
	hdr.Set("Cache-Control", cc)
	varyOnCookie(hdr)
}

// varyOnCookie merges Cookie into the response's Vary, so that a cache
// that keys on Vary but ignores private never gives one cookie's page to
// another; a Vary that names it, or `*`, is kept as it is.
func varyOnCookie(hdr http.Header) {
	vary := hdr.Values("Vary")
	for _, v := range vary {
		if hasDirective(v, "cookie") || hasDirective(v, "*") {
			return
		}
	}
	if len(vary) == 0 {
		hdr["Vary"] = []string{"Cookie"}
		return
	}
	merged := "Cookie"
	if joined := strings.Join(vary, ", "); strings.TrimSpace(joined) != "" {
		merged = joined + ", Cookie"
	}
	hdr.Set("Vary", merged)
}

// cacheControlHas reports whether one of the response's Cache-Control
// lines holds the directive name.
func cacheControlHas(hdr http.Header, name string) bool {
	for _, v := range hdr.Values("Cache-Control") {
		if hasDirective(v, name) {
			return true
		}
	}
	return false
}

// cacheControlHasBare is cacheControlHas for the directive without an
// argument.
func cacheControlHasBare(hdr http.Header, name string) bool {
	for _, v := range hdr.Values("Cache-Control") {
		if hasDirectiveOf(v, name, false) {
			return true
		}
	}
	return false
}

// dropCacheTargets removes the fields that some caches obey in place of
// Cache-Control (targetsCaches).
func dropCacheTargets(hdr http.Header) {
	for name := range hdr {
		if targetsCaches(name) {
			delete(hdr, name)
		}
	}
}

// targetsCaches reports whether a header is a cache directive that some
// caches obey instead of Cache-Control: Surrogate-Control, CDN-Cache-Control
// (RFC 9213), the vendors' targeted fields such as
// Cloudflare-CDN-Cache-Control, and nginx's X-Accel-Expires, with which
// an nginx proxy_cache in front stores a response whatever its
// Cache-Control says (private included).
func targetsCaches(name string) bool {
	const cdn = "-CDN-Cache-Control"
	if name == "" || name[len(name)-1]|0x20 != 'l' && name[len(name)-1]|0x20 != 's' {
		return false // every such name ends in "control" or "expires": most fields are out at one byte
	}
	return strings.EqualFold(name, "Surrogate-Control") || strings.EqualFold(name, cdn[1:]) ||
		strings.EqualFold(name, "X-Accel-Expires") ||
		len(name) > len(cdn) && strings.EqualFold(name[len(name)-len(cdn):], cdn)
}

// hasDirective reports whether the Cache-Control field value v holds the
// directive name: a comma-separated token compared case-insensitively, its
// "=argument" ignored. A comma or name inside a quoted argument is not a
// directive, so `private="x, no-store"` does not forbid storing.
func hasDirective(v, name string) bool {
	return hasDirectiveOf(v, name, true)
}

// hasDirectiveOf is hasDirective, counting a directive with an argument
// only if withArgument: `private="Set-Cookie"` names the fields a shared
// cache must not store, and lets it store the rest of the response, so
// only a bare `private` keeps a response from shared caches.
func hasDirectiveOf(v, name string, withArgument bool) bool {
	for v != "" {
		var directive string
		directive, v = nextDirective(v)
		directive, _, arg := strings.Cut(directive, "=")
		if strings.EqualFold(strings.TrimSpace(directive), name) && (withArgument || !arg) {
			return true
		}
	}
	return false
}

// nextDirective splits v at its first comma outside a quoted string.
func nextDirective(v string) (directive, rest string) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++ // a quoted-pair: the next byte is literal
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

// setCookie adds the Set-Cookie field value of the session cookie to the
// response and keeps shared caches from storing the response. The line is
// kept among the request's own (ownCookiesKey), so that no session
// handler the response passes after this one takes it for the app's.
func setCookie(r *http.Request, hdr http.Header, cookie string) {
	hdr.Add("Set-Cookie", cookie)
	noStore(hdr)
	if own, repl := ownCookies(r); repl != nil {
		repl.Set(ownCookiesKey, append(slices.Clip(own), cookie))
	}
}
