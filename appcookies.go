package caddysession

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// ownCookiesKey keeps, among the static values of the request's replacer,
// the Set-Cookie lines the session handlers wrote on its response
// (setCookie). Not among the request's vars: they are written while the
// response is committed, when reverse_proxy's dialer may still read the
// vars from a goroutine of its own (a dial it started and did not need),
// and the replacer's values are guarded by a lock.
const ownCookiesKey = "\x00caddy-session-own-cookies"

// ownCookies is the Set-Cookie lines the session handlers wrote on r's
// response.
func ownCookies(r *http.Request) ([]string, *caddy.Replacer) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return nil, nil
	}
	v, _ := repl.Get(ownCookiesKey)
	own, _ := v.([]string)
	return own, repl
}

// screenAppCookies removes from a response the app's Set-Cookie lines of
// a session cookie: this handler's, those of the config's other
// handlers that browsers send to its hosts (setForeignCookies), and those
// of the others whose hosts the line's Domain covers (tossable). The
// handler owns its cookie; an app that set one planted an ID of its
// choosing in the browser, or removed the user's: the forum's app, under
// the shop's host, could log the user into the shop as the attacker (who
// would then read what the user entered there), or log them out of it.
// Lines a session handler wrote for the response stay. Nothing to do, and
// one map lookup, on a response with no Set-Cookie.
func (h *Handler) screenAppCookies(r *http.Request, hdr http.Header) {
	screenCookies(r, hdr, h.ownsLine, h.logger)
}

// screenCookies removes from hdr the Set-Cookie lines that owns claims
// (by the cookie's name and the line), but those a session handler wrote
// for the request.
func screenCookies(r *http.Request, hdr http.Header, owns func(name, line string) bool, logger *zap.Logger) {
	lines := hdr["Set-Cookie"]
	if len(lines) == 0 {
		return
	}
	own, _ := ownCookies(r)
	kept := lines[:0:0]
	for i, line := range lines {
		name := setCookieName(line)
		if !owns(name, line) || slices.Contains(own, line) {
			if kept != nil {
				kept = append(kept, line)
			}
			continue
		}
		if kept == nil {
			kept = append(make([]string, 0, len(lines)), lines[:i]...)
		}
		logger.Warn("removed the app's Set-Cookie of a session cookie; the session handler alone sets it (to end or start a session, send the session's commands)",
			zap.String("cookie", name), zap.String("uri", r.RequestURI))
	}
	if kept == nil {
		return // nothing removed: the header stays as the app wrote it
	}
	if len(kept) == 0 {
		delete(hdr, "Set-Cookie")
		return
	}
	hdr["Set-Cookie"] = kept
}

// screenAppCookies removes from what an error route answers the app's
// Set-Cookie lines of the session cookies of the server's handlers and
// of those that browsers send to their hosts, as each handler does for
// the answers it passes: Caddy runs the error routes outside the
// handlers, and an error route that proxies to an app (the site's own,
// or another's error pages) planted an ID of the app's choosing in the
// browser, or removed the user's.
func (g *ErrorGuard) screenAppCookies(r *http.Request, hdr http.Header) {
	screenCookies(r, hdr, func(name, line string) bool {
		return slices.ContainsFunc(g.handlers, func(h *Handler) bool { return h.ownsLine(name, line) })
	}, g.logger)
}

// ownsCookie reports whether name is the session cookie of h or of a
// handler whose cookie browsers send to h's hosts.
func (h *Handler) ownsCookie(name string) bool {
	if name == h.cookie.Name {
		return true
	}
	for _, c := range h.foreignCookies {
		if name == c.Name {
			return true
		}
	}
	return false
}

// tossTarget is the session cookie of another handler, by name, and the
// hosts of each site that handler serves (none: any host).
type tossTarget struct {
	name  string
	hosts [][]string
}

// ownsLine reports whether a Set-Cookie line of the cookie name sets a
// session cookie that h screens: its own, one browsers send to its hosts
// (ownsCookie), or another handler's whose hosts the line's Domain covers.
// An app that sets `asid=<its choice>; Domain=example.com` on
// b.example.com plants that ID for a.example.com, whose session cookie
// asid is host-only and so never sent to b: the forum's app logged the
// user into the shop as the attacker. Parsed only for a line whose name
// is another handler's session cookie.
func (h *Handler) ownsLine(name, line string) bool {
	if h.ownsCookie(name) {
		return true
	}
	for _, t := range h.tossable {
		if t.name != name {
			continue
		}
		domain := setCookieDomain(line)
		if domain == "" {
			continue // host-only, to this request's host: ownsCookie's
		}
		for _, hosts := range t.hosts {
			if len(hosts) == 0 || slices.ContainsFunc(hosts, func(host string) bool { return domainReaches(domain, host) }) {
				return true
			}
		}
	}
	return false
}

// setCookieDomain is the Domain a Set-Cookie line gives its cookie, as
// browsers read it (RFC 6265 5.2.3): the last Domain attribute that has a
// value, lower case, without a leading dot; "" for a host-only cookie.
func setCookieDomain(line string) string {
	_, attrs, _ := strings.Cut(line, ";")
	domain := ""
	for attr := range strings.SplitSeq(attrs, ";") {
		name, value, _ := strings.Cut(attr, "=")
		if !strings.EqualFold(strings.Trim(name, " \t"), "domain") {
			continue
		}
		if value = strings.TrimPrefix(strings.Trim(value, " \t"), "."); value != "" {
			domain = strings.ToLower(value)
		}
	}
	return domain
}

// setCookieName is the name of the cookie a Set-Cookie line sets, as
// browsers read it: up to the first '=', without the white space around.
func setCookieName(line string) string {
	pair, _, _ := strings.Cut(line, ";")
	name, _, _ := strings.Cut(pair, "=")
	return strings.Trim(name, " \t")
}
