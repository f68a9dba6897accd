package caddysession

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

// setForeignCookies gives each handler the session cookies of the
// config's other handlers that a browser may send on its requests: a
// host-only cookie of a site whose hosts overlap the handler's (two apps
// under one host, each with a session of its own, in `handle /shop/*`
// and `handle /forum/*`), and a cookie whose `domain` covers one of the
// handler's hosts. Browsers send every such cookie to every path and port
// of the host, and each handler took only its own off the request: the
// forum's app got the raw ID of the user's shop session, and could act
// as the user there. Ports do not matter, so the handlers of every server
// count.
//
// A handler with forward_cookie that runs before this one in a request
// (this one is in its route list, or nested in it) keeps its cookie: the
// app behind both is the one it forwards it to. One nested in this
// handler's routes gets its cookie taken off as any other, and puts it
// back when it runs (restoreCookie): kept, it reached the app of every
// path of the site that the nested handler does not serve.
func (w *walker) setForeignCookies(handlers []*Handler) {
	for _, h := range handlers {
		h.foreignCookies = nil
		h.readsStash = false
	}
	for _, h := range handlers {
		for _, o := range handlers {
			if o.cookie.Name == h.cookie.Name || !w.cookieReaches(o, h) ||
				slices.ContainsFunc(h.foreignCookies, func(c *session.Cookie) bool { return c.Name == o.cookie.Name }) {
				continue
			}
			if o.ForwardCookie && w.runsBefore(o, h) {
				continue
			}
			h.foreignCookies = append(h.foreignCookies, o.cookie)
		}
	}
	for _, h := range handlers {
		h.tossable = nil
		for _, o := range handlers {
			if h.ownsCookie(o.cookie.Name) {
				continue
			}
			t := tossTarget{name: o.cookie.Name}
			for _, at := range w.placesOf(o) {
				t.hosts = append(t.hosts, at.hosts)
			}
			h.tossable = append(h.tossable, t)
		}
	}
	// A handler (or a matcher through it) that runs after one that took
	// its cookie off the request reads the IDs that one stashed.
	for _, h := range handlers {
		for _, c := range h.foreignCookies {
			for _, o := range handlers {
				if o.cookie.Name == c.Name {
					o.readsStash = true
				}
			}
		}
	}
}

// cookieReaches reports whether a browser may send o's session cookie on
// a request to one of h's hosts (no hosts: any host). A handler in a named
// route that several sites invoke is at each of them (shared): its first
// site alone let the app behind it, on another site's host, get that
// site's cookie, and that site's app get its.
func (w *walker) cookieReaches(o, h *Handler) bool {
	domain := strings.ToLower(strings.TrimPrefix(o.cookie.Domain, "."))
	for _, at := range w.placesOf(h) {
		if domain == "" {
			if slices.ContainsFunc(w.placesOf(o), func(from site) bool { return hostsOverlap(from.hosts, at.hosts) }) {
				return true
			}
			continue
		}
		if len(at.hosts) == 0 || slices.ContainsFunc(at.hosts, func(host string) bool { return domainReaches(domain, host) }) {
			return true
		}
	}
	return false
}

// domainReaches reports whether a browser sends a cookie of the domain
// (lower case, no leading dot) to a host the pattern matches: the domain
// itself or a host under it. A wildcard pattern (*.example.com) matches
// the domain itself when the domain is one label under its suffix
// (a.example.com): compared as a string, the site's app got the cookie
// of a.example.com, which browsers send it on that host.
func domainReaches(domain, pattern string) bool {
	pattern = strings.ToLower(pattern)
	return pattern == domain || strings.HasSuffix(pattern, "."+domain) || hostCovers(pattern, domain)
}

// placesOf is every site h serves: its own, and those of the other sites
// that invoke the named route it sits in.
func (w *walker) placesOf(h *Handler) []site {
	if shared := w.shared[h]; len(shared) > 0 {
		return shared // the first site among them
	}
	return []site{w.sites[h]}
}

// runsBefore reports whether a request that reaches h may have passed o
// first: h sits in o's route list, or in a route nested in it.
func (w *walker) runsBefore(o, h *Handler) bool {
	hs, os := w.scopes[h], w.scopes[o]
	if hs == nil || os == nil {
		return true // not placed by the walk: keep what forward_cookie asks
	}
	return os.encloses(hs)
}

// restoredVar is the request var that holds the names of the session
// cookies that handlers with forward_cookie put back on the request
// (restoreCookie): the handlers and the error guard after them leave
// those to the app.
const restoredVar = "\x00caddy-session-restored-cookies"

// restoreCookie puts back on the request the IDs of h's cookie that a
// handler before it took off (stripForeign), for h forwards its cookie
// to the app (forward_cookie).
func (h *Handler) restoreCookie(r *http.Request) {
	if !h.readsStash {
		return
	}
	stashed, _ := caddyhttp.GetVar(r.Context(), cookieStashPrefix+h.cookie.Name).([]string)
	if len(stashed) == 0 {
		return
	}
	present := h.cookie.Candidates(r)
	var b strings.Builder
	for _, id := range stashed {
		if slices.Contains(present, id) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(h.cookie.Name + "=" + id)
	}
	if b.Len() > 0 {
		lines := r.Header["Cookie"]
		r.Header["Cookie"] = append(lines[:len(lines):len(lines)], b.String()) // the old slice stays as it was
	}
	restored, _ := caddyhttp.GetVar(r.Context(), restoredVar).([]string)
	if !slices.Contains(restored, h.cookie.Name) {
		caddyhttp.SetVar(r.Context(), restoredVar, append(restored, h.cookie.Name))
	}
}

// stripForeign takes the other handlers' session cookies off the request
// (setForeignCookies), keeping the IDs for a handler of such a cookie
// that comes after h in the request (stashCookie). Nothing to do, and no
// cost, on a config with one cookie name.
func (h *Handler) stripForeign(r *http.Request) {
	var restored []string
	for i, c := range h.foreignCookies {
		if i == 0 {
			restored, _ = caddyhttp.GetVar(r.Context(), restoredVar).([]string)
		}
		if !slices.Contains(restored, c.Name) {
			stashCookie(c, r)
		}
	}
}

// readsStashed reports whether h must look for IDs of its cookie that a
// handler before it took off the request.
func (h *Handler) readsStashed() bool { return h.marksForwarded || h.readsStash }
