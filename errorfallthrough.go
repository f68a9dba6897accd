package caddysession

import (
	"slices"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// A site without handle_errors of its own has its errors answered by
// another site's of the port, if one matches: a catch-all's (`:443`,
// `http://`) or a wildcard site's. The Caddyfile's session directive adds
// the guard to its site's error routes, as a route of the site's hosts
// that Caddy makes terminal; alone there, it answered every error of the
// site with Caddy's empty response, and the catch-all's error page no
// longer showed for it. So the guard runs, after itself, the error routes
// Caddy would have tried had the site none: those after its site's route
// (setFallThrough), inside the guard, which keeps the site's namespace off
// their answer. The session handler takes its session off the request
// before such routes get its errors (foreignErrors skips a route of only
// guards).

// setFallThrough gives the last guard of each terminal error route of srv
// that holds nothing but guards the error routes after that route.
func setFallThrough(guards map[*ErrorGuard]*caddyhttp.Server) {
	for g, srv := range guards {
		g.rest = nil
		if srv.Errors == nil {
			continue
		}
		for i, route := range srv.Errors.Routes {
			found := lastGuardIn(route)
			if found == nil {
				continue
			}
			if found == g && route.Terminal && onlyGuards(route) {
				g.rest = srv.Errors.Routes[i+1:]
			}
		}
	}
}

// onlyGuards reports whether route answers nothing itself: its handlers,
// and those of the subroutes it holds, are guards only.
func onlyGuards(route caddyhttp.Route) bool {
	if len(route.Handlers) == 0 {
		return false
	}
	for _, h := range route.Handlers {
		switch h := h.(type) {
		case *ErrorGuard:
		case *caddyhttp.Subroute:
			if h.Errors != nil || len(h.Routes) == 0 || slices.ContainsFunc(h.Routes, func(r caddyhttp.Route) bool { return !onlyGuards(r) }) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// lastGuardIn is the last guard among the handlers of route and its
// subroutes, nil if none.
func lastGuardIn(route caddyhttp.Route) *ErrorGuard {
	var last *ErrorGuard
	for _, h := range route.Handlers {
		switch h := h.(type) {
		case *ErrorGuard:
			last = h
		case *caddyhttp.Subroute:
			for _, r := range h.Routes {
				if g := lastGuardIn(r); g != nil {
					last = g
				}
			}
		}
	}
	return last
}
