package caddysession

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/intercept"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
)

// scope is one route list of the config (a server's routes, a subroute's,
// a handle_response's) and the session handlers that sit directly in its
// routes: what a session matcher in that list reads from.
type scope struct {
	parent   *scope
	handlers []*Handler
	// invoked: the route list of a named route that an invoke with a
	// session handler on its way calls. Its matchers still read from
	// its own handlers only (a named route may serve several sites), but
	// a request there has passed that session handler (underSession).
	invoked bool
}

// site is where a handler sits: the listen addresses of its server and the
// hosts its enclosing routes match. It names the default realm.
type site struct {
	listen []string
	// hosts are the hosts the handler can be reached on: each route's
	// hosts narrow those of the routes around it, as the matchers of
	// nested routes must all match.
	hosts []string
	// path is the hosts of each enclosing route's matchers, outermost
	// first, as holds compares them. They name the default realm, as
	// they always have, unless split.
	path []string
	// split: the realm is named by hosts (splitRealms).
	split bool
	// cookie: the realm is named by the handler's cookie too, which
	// another handler of its realm and store does not share
	// (splitCookies).
	cookie string
	// top is the hosts of the server's route the handler sits in (its
	// site, in a Caddyfile), once topSet: whose error routes are its
	// site's own (foreignErrors).
	top    []string
	topSet bool
	// topMatchers is the matchers of that route, which the site's own
	// error route repeats (a Caddyfile site with a path: host and path).
	topMatchers caddyhttp.MatcherSets
	// before is how many of the server's routes come before the one it
	// sits in, which Caddy tries first (0 where that route is none of
	// them: an error route, a named route no route invokes).
	before int
}

// realm is the default realm of a handler at this site, such as
// "example.com@:443" or "*@:8081". It is made of what the site is, not of
// where it sits in the config (server names such as srv0 change when
// other sites are added), so it survives reloads and edits of other sites.
func (s site) realm() string {
	hosts := slices.Clone(s.path)
	if s.split {
		hosts = slices.Clone(s.hosts)
		// A site of the host `*` (any one-label name), told apart from
		// a site of no hosts, which is "*".
		for i, h := range hosts {
			if h == "*" {
				hosts[i] = "(*)"
			}
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	listen := slices.Clone(s.listen)
	slices.Sort(listen)
	h := strings.Join(hosts, ",")
	if h == "" {
		h = "*"
	}
	realm := h + "@" + strings.Join(listen, ",")
	if s.cookie != "" {
		realm += " cookie " + s.cookie
	}
	return realm
}

// walker finds the place of every session handler and matcher in the
// routes of the HTTP app.
type walker struct {
	sites    map[*Handler]site
	scopes   map[*Handler]*scope // the route list each handler is in
	matchers map[*MatchSession]*scope
	// servers groups the handlers by the server they are in: the handlers
	// that one request may pass through.
	servers map[*caddyhttp.Server][]*Handler
	srv     *caddyhttp.Server // the server being walked
	// guards are the error guards (session_errors), by the server whose
	// error routes hold them.
	guards map[*ErrorGuard]*caddyhttp.Server
	// jwks are the places of the session_jwks handlers, which serve the
	// keys of their own site.
	jwks map[*JWKS][]site
	// shared holds, for a handler that sits in a named route several
	// sites invoke (`invoke`), each site it serves: one handler has one
	// realm, so its default realm cannot keep those sites apart.
	shared map[*Handler][]site
	// named holds the server's named routes that an invoke calls, each
	// with the places it was walked at (the realm of the site, and
	// whether a session handler was on the way), so that each is walked
	// once per place and an invoke cycle ends.
	named map[string]map[namedPlace]bool
	// proxies holds how requests reach each reverse_proxy: one in a named
	// route is reached from every invoke of it (markProxies).
	proxies map[*reverseproxy.Handler]proxyReach
	// inNamed is the named route being walked, "" if none.
	inNamed string
	// unreached: the walk is in a named route that no route invokes,
	// which no request reaches.
	unreached bool
	// ctx provisions what the walk adds to the routes (markReplaced);
	// err is the first failure to.
	ctx caddy.Context
	err error
}

// wire walks the HTTP app once the config is provisioned: it sets the
// realm of every handler that has none, ties every session matcher to its
// handler, and warns about cookies shared across realms.
func (a *App) wire() error {
	w := newWalker()
	w.ctx = a.ctx
	if app, err := a.ctx.AppIfConfigured("http"); err == nil {
		if httpApp, ok := app.(*caddyhttp.App); ok {
			for _, srv := range httpApp.Servers {
				w.server(srv)
			}
		}
	}
	w.markProxies(a.logger)
	if w.err != nil {
		return fmt.Errorf("marking the handle_response routes of reverse_proxy: %v", w.err)
	}
	w.splitRealms()
	w.splitCookies()
	handlers := a.Handlers()
	for _, h := range handlers {
		if sites := w.shared[h]; len(sites) > 1 && h.Realm == "" {
			realms := make([]string, len(sites))
			for i, at := range sites {
				realms[i] = at.realm()
			}
			return fmt.Errorf("session handler in a named route that %d sites invoke (%s): one handler has one realm, and the default one (the site) would give them one session; set its realm (the sites then share sessions; realm %q keeps the sessions they shared before), or write session in each site",
				len(sites), strings.Join(realms, ", "), site{listen: sites[0].listen}.realm())
		}
		h.setRealm(w.sites)
		if h.signer != nil {
			if err := h.signer.forRealm(a.ctx, h.realm); err != nil {
				return err
			}
		}
	}
	if err := w.checkHandlers(handlers); err != nil {
		return err
	}
	shareIndexKeys(handlers)
	w.placeJWKS(handlers)
	w.setForeignCookies(handlers)
	setDerivations(handlers)
	// Every handler removes the namespaces of the whole config, not only
	// of its server's: one app often stands behind sites on several ports
	// (a public one and an admin one with a prefix of its own), and a
	// client's X-Session-User sent to the port whose handler uses another
	// prefix reached it there.
	setNamespaces(handlers)
	for _, hs := range w.servers {
		setMarksForwarded(hs)
		for _, h := range hs {
			h.inErrors.handlers = hs
		}
	}
	for g, srv := range w.guards {
		g.handlers = w.servers[srv]
	}
	setFallThrough(w.guards)
	a.mu.Lock()
	matchers := slices.Clone(a.matchers)
	a.mu.Unlock()
	for _, m := range matchers {
		sc, placed := w.matchers[m]
		if !placed {
			continue // made by CEL, or somewhere the walk does not go: reads the loaded session only
		}
		h, err := handlerFor(m, sc, handlers)
		if err != nil {
			return err
		}
		m.handler = h
	}
	a.warnConfig(handlers, w)
	return nil
}

// checkHandlers refuses what the handlers' places make unsafe or broken:
// a cookie domain none of a site's hosts is within, two index keys of one
// realm and store, and namespaces of one server of which one holds the
// other.
func (w *walker) checkHandlers(handlers []*Handler) error {
	if err := checkCookieDomains(handlers, w.placesOf); err != nil {
		return err
	}
	if err := checkIndexKeys(handlers); err != nil {
		return err
	}
	for _, hs := range w.servers {
		if err := w.checkOverlaps(hs); err != nil {
			return err
		}
	}
	return nil
}

// warnConfig warns, once the config is wired, about settings that load
// but that a user would want to hear of.
func (a *App) warnConfig(handlers []*Handler, w *walker) {
	a.warnSharedCookies(handlers, w.sites)
	a.warnSplitIdentity(handlers)
	warnInsecureCookie(a.logger, w.servers)
	warnAppServerCookie(a.logger, handlers)
	warnSplitLimits(a.logger, handlers)
	warnCrossSiteCookie(a.logger, handlers)
	warnSharedSigningKeys(a.logger, handlers)
	warnNamedRealmCookies(a.logger, handlers)
}

func newWalker() *walker {
	return &walker{sites: map[*Handler]site{}, scopes: map[*Handler]*scope{}, matchers: map[*MatchSession]*scope{}, servers: map[*caddyhttp.Server][]*Handler{}, jwks: map[*JWKS][]site{},
		shared: map[*Handler][]site{}, guards: map[*ErrorGuard]*caddyhttp.Server{}, proxies: map[*reverseproxy.Handler]proxyReach{}}
}

func (w *walker) server(srv *caddyhttp.Server) {
	root := &scope{}
	at := site{listen: srv.Listen}
	w.srv = srv
	w.named = map[string]map[namedPlace]bool{}
	sc := w.scope(srv.Routes, root)
	for i, r := range srv.Routes {
		at.before = i
		w.route(r, sc, at)
	}
	at.before = 0
	if srv.Errors != nil {
		w.list(srv.Errors.Routes, root, at)
	}
	// A named route runs where an `invoke` calls it, and is of the site
	// of that invoke (walked there, by invoke); one no route invokes is
	// placed at the server, so that its handlers still have a realm.
	w.unreached = true
	for name, r := range srv.NamedRoutes {
		if w.named[name] == nil {
			w.list(caddyhttp.RouteList{*r}, root, at)
		}
	}
	w.unreached = false
	for _, h := range w.servers[srv] {
		h.foreignErrors = foreignErrors(srv, w.sites[h]) ||
			slices.ContainsFunc(w.shared[h], func(at site) bool { return foreignErrors(srv, at) })
	}
}

// foreignErrors reports whether an error of a request that a handler at
// the site at serves may be answered by the error routes of another site
// of the server: a catch-all site (`:443`, `http://`) or a wildcard one
// whose handle_errors Caddy runs for every host of the port that has no
// error routes of its own, as for a site whose session sits in a `handle`
// or `route` block, which adds no guard. Those routes get the request as
// the session handler left it, with the session forwarded in it, and would
// hand this site's session (values, signed token) to the other site's app.
// An error route is another site's when a route of the server's own routes
// has its hosts and the handler's site does not; routes that no site owns
// (a JSON config's server-wide error routes) are taken as the site's, as
// before. An error route of hosts that a site before the handler's serves
// whole is not reached from it (taken). The walk stops at a terminal route
// that matches all of the handler's hosts, which answers first, or that
// matches as the handler's site does (the same matchers: a site with a
// path, whose requests all match its error route unless a rewrite moved
// them off its path).
func foreignErrors(srv *caddyhttp.Server, at site) bool {
	if srv.Errors == nil {
		return false
	}
	var owners [][]string
	for _, r := range srv.Routes {
		hosts, _ := routeHosts(r)
		owners = append(owners, hosts)
	}
	for _, e := range srv.Errors.Routes {
		if onlyGuards(e) {
			continue // answers nothing: the routes after it do (errorfallthrough.go)
		}
		if e.Terminal && len(at.topMatchers) > 0 && sameMatchers(e.MatcherSets, at.topMatchers) {
			return false // the site's own
		}
		hosts, other := routeHosts(e)
		if len(hosts) > 0 && (!overlap(hosts, at.hosts) || taken(srv.Routes[:at.before], hosts, at.hosts)) {
			// Not reached from here: a handler of no hosts serves the
			// hosts no other site has, whose errors no site's routes
			// get, and a wildcard site none that a site before it takes.
			continue
		}
		if !sameHosts(hosts, at.top) && slices.ContainsFunc(owners, func(o []string) bool { return sameHosts(o, hosts) }) {
			return true
		}
		if e.Terminal && !other && (len(hosts) == 0 || !slices.ContainsFunc(at.hosts, func(host string) bool {
			return !slices.ContainsFunc(hosts, func(pattern string) bool { return hostCovers(pattern, host) })
		})) {
			return false
		}
	}
	return false
}

// sameMatchers reports whether a and b match the same requests by the
// same matchers: each set of a has the matchers of b's set at its place,
// in any order (a set's matchers load from a JSON object, whose order a
// map iteration picks).
func sameMatchers(a, b caddyhttp.MatcherSets) bool {
	return slices.EqualFunc(a, b, func(x, y caddyhttp.MatcherSet) bool {
		return len(x) == len(y) && !slices.ContainsFunc(x, func(m any) bool {
			return !slices.ContainsFunc(y, func(n any) bool { return reflect.DeepEqual(m, n) })
		})
	})
}

// taken reports whether every host that both hosts and at name (an error
// route's and a handler's: the narrower of two that one covers) is served
// whole by one of the routes before the handler's, a terminal route that
// matches on hosts only, so that no request of those hosts reaches the
// handler: an error route of a host site (a.example.com) that a wildcard
// site after it (*.example.com) overlaps never gets the wildcard site's
// errors. A handler of no hosts (at nil) meets hosts whole.
func taken(before caddyhttp.RouteList, hosts, at []string) bool {
	var both []string
	for _, x := range hosts {
		if len(at) == 0 {
			both = append(both, x)
		}
		for _, y := range at {
			if hostCovers(y, x) {
				both = append(both, x)
			} else if hostCovers(x, y) {
				both = append(both, y)
			}
		}
	}
	return len(both) > 0 && !slices.ContainsFunc(both, func(host string) bool {
		return !slices.ContainsFunc(before, func(r caddyhttp.Route) bool {
			patterns, other := routeHosts(r)
			return r.Terminal && !other &&
				slices.ContainsFunc(patterns, func(p string) bool { return hostCovers(p, host) })
		})
	})
}

// routeHosts is the hosts a route's matchers limit it to, nil for every
// host, and whether they match on anything else as well (so that the route
// may not match a request of those hosts).
func routeHosts(r caddyhttp.Route) (hosts []string, other bool) {
	if len(r.MatcherSets) == 0 {
		return nil, false
	}
	every := false
	for _, set := range r.MatcherSets {
		named := false
		for _, m := range set {
			if mh, ok := m.(*caddyhttp.MatchHost); ok {
				named = true
				hosts = append(hosts, *mh...)
			} else {
				other = true
			}
		}
		every = every || !named
	}
	if every {
		return nil, other
	}
	return hosts, other
}

// overlap reports whether a host of a and one of b can be one name.
func overlap(a, b []string) bool {
	return slices.ContainsFunc(a, func(x string) bool {
		return slices.ContainsFunc(b, func(y string) bool { return hostCovers(x, y) || hostCovers(y, x) })
	})
}

// sameHosts reports whether a and b name the same hosts, in any order and
// case.
func sameHosts(a, b []string) bool {
	norm := func(hosts []string) []string {
		out := make([]string, len(hosts))
		for i, h := range hosts {
			out[i] = strings.ToLower(h)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// namedPlace is where an invoke calls a named route: the realm of its
// site, and whether a session handler is on the way.
type namedPlace struct {
	realm   string
	session bool
}

// invoke walks the named route that an `invoke` in the route list sc at
// the site at calls, as a route list of that site, once per site and per
// whether a session handler is on the way (its reverse_proxy is marked
// only if one is on every way to it: markProxies).
func (w *walker) invoke(name string, sc *scope, at site) {
	r, ok := w.srv.NamedRoutes[name]
	place := namedPlace{realm: at.realm(), session: sc.underSession()}
	if !ok || w.named[name][place] {
		return
	}
	if w.named[name] == nil {
		w.named[name] = map[namedPlace]bool{}
	}
	w.named[name][place] = true
	outer := w.inNamed
	w.inNamed = name
	w.list(caddyhttp.RouteList{*r}, &scope{invoked: place.session}, at)
	w.inNamed = outer
}

// list walks a route list, which is a scope of its own.
func (w *walker) list(routes caddyhttp.RouteList, parent *scope, at site) {
	sc := w.scope(routes, parent)
	for _, r := range routes {
		w.route(r, sc, at)
	}
}

// scope is the scope of a route list: the session handlers in its routes.
func (w *walker) scope(routes caddyhttp.RouteList, parent *scope) *scope {
	sc := &scope{parent: parent}
	for _, r := range routes {
		for _, hd := range r.Handlers {
			if h, ok := hd.(*Handler); ok {
				sc.handlers = append(sc.handlers, h)
			}
		}
	}
	return sc
}

func (w *walker) route(r caddyhttp.Route, sc *scope, at site) {
	here := site{listen: at.listen, hosts: at.hosts, path: slices.Clone(at.path), top: at.top, topSet: at.topSet, topMatchers: at.topMatchers, before: at.before}
	var level []string
	for _, set := range r.MatcherSets {
		level = append(level, w.matcherSet(set, sc)...)
	}
	if !here.topSet {
		here.top, here.topMatchers, here.topSet = level, r.MatcherSets, true
	}
	here.path = append(here.path, level...)
	here.hosts = narrowHosts(here.hosts, level)
	for _, hd := range r.Handlers {
		switch h := hd.(type) {
		case *Handler:
			w.handler(h, sc, here)
		case *caddyhttp.Invoke:
			w.invoke(h.Name, sc, here)
		case *JWKS:
			w.jwks[h] = append(w.jwks[h], here) // several in a named route several sites invoke
		case *ErrorGuard:
			w.guards[h] = w.srv
		case *caddyhttp.Subroute:
			w.list(h.Routes, sc, here)
			if h.Errors != nil {
				w.list(h.Errors.Routes, sc, here)
			}
		case *reverseproxy.Handler:
			w.reverseProxy(h, sc, here)
		case *intercept.Intercept:
			for _, rh := range h.HandleResponse {
				w.list(rh.Routes, sc, here)
			}
		}
	}
}

// handler places a session handler found in the route list sc at the
// site here. The handler's own match (`session @matcher`) places it as a
// route's matcher would: the hosts it names are its site's, as they were
// when the Caddyfile put that matcher on its route.
func (w *walker) handler(h *Handler, sc *scope, here site) {
	if len(h.match) > 0 {
		var level []string
		for _, set := range h.match {
			level = append(level, w.matcherSet(set, sc)...)
		}
		here.path = append(slices.Clone(here.path), level...)
		here.hosts = narrowHosts(here.hosts, level)
	}
	w.noTouch(h, sc)
	if prev, seen := w.sites[h]; seen {
		// A named route's handler, invoked from another site.
		if prev.realm() != here.realm() {
			if len(w.shared[h]) == 0 {
				w.shared[h] = []site{prev}
			}
			if !slices.ContainsFunc(w.shared[h], func(s site) bool { return s.realm() == here.realm() }) {
				w.shared[h] = append(w.shared[h], here)
			}
		}
		return
	}
	w.sites[h] = here
	w.scopes[h] = sc
	w.servers[w.srv] = append(w.servers[w.srv], h)
}

// proxyReach is how requests reach a reverse_proxy: past a session
// handler on some way (session), on some way past none (bare), and the
// named route it is in ("" if none).
type proxyReach struct {
	session, bare bool
	named         string
}

// reverseProxy notes how requests reach h (markProxies marks it once the
// walk has found every way), and walks its handle_response routes.
func (w *walker) reverseProxy(h *reverseproxy.Handler, sc *scope, here site) {
	if !w.unreached {
		reach := w.proxies[h]
		if sc.underSession() {
			reach.session = true
		} else {
			reach.bare = true
		}
		if reach.named == "" {
			reach.named = w.inNamed
		}
		w.proxies[h] = reach
	}
	for _, rh := range h.HandleResponse {
		w.list(rh.Routes, sc, here)
	}
}

// markProxies marks the handle_response routes (markReplaced) of each
// reverse_proxy that has a session handler on every way to it: a request
// there waits for this walk (wired) before it reaches it, while one that
// passes none may be served as the walk changes its routes. A named
// route's reverse_proxy is one handler for every invoke of it, with or
// without a session handler on the way; where both, it is left alone, and
// a warning says that the app's status may not decide there.
func (w *walker) markProxies(logger *zap.Logger) {
	for h, reach := range w.proxies {
		switch {
		case !reach.session:
		case !reach.bare:
			if err := markReplaced(w.ctx, h); err != nil && w.err == nil {
				w.err = err
			}
		case len(h.HandleResponse) > 0 && logger != nil:
			logger.Warn("a reverse_proxy with handle_response in a named route is invoked both where a session handler is on the way and where none is: a handle_response there that answers an app's error (or 425) by asking a second app applies that app's commands; invoke the named route only under session handlers, or write the reverse_proxy in each site",
				zap.String("named_route", reach.named))
		}
	}
}

// placeJWKS gives each session_jwks without a realm the realms of the
// session handlers of its own site: those of its server whose hosts are
// its own, or hosts matched within its own. Each realm signs with keys of
// its own, and an app that fetched its site's set must not accept the
// tokens of another site, which a client can make that site sign with
// any aud it likes (a Host of its choosing), and an attacker who reaches
// the app around Caddy can send with the Host of its aud.
func (w *walker) placeJWKS(handlers []*Handler) {
	for j, places := range w.jwks {
		j.placed, j.realms = true, nil
		for _, h := range handlers {
			hs, placed := w.sites[h]
			if !placed || slices.Contains(j.realms, h.realm) {
				continue
			}
			// A handler of a named route with a realm of its own may
			// serve several sites: it is of each.
			at := append([]site{hs}, w.shared[h]...)
			if slices.ContainsFunc(places, func(p site) bool { return slices.ContainsFunc(at, p.holds) }) {
				j.realms = append(j.realms, h.realm)
			}
		}
	}
}

// splitRealms gives each handler of a default realm that none of its
// handlers serves whole (a site of two hosts with a `handle`, or a
// `session @matcher`, per host: each serves one) the realm of the hosts
// it serves, so that a session made on one host's app does not open on
// the other's. Where one of them serves the hosts of all (the site's own
// handler, with stricter ones nested in it), or where all of them serve
// the same hosts, they keep sharing sessions, under the name the realm
// has always had, so that an upgrade keeps them.
func (w *walker) splitRealms() {
	groups := map[string][]*Handler{}
	for h, at := range w.sites {
		if h.Realm == "" {
			groups[at.realm()] = append(groups[at.realm()], h)
		}
	}
	for _, group := range groups {
		if slices.ContainsFunc(group, func(o *Handler) bool { return w.servesAll(o, group) }) {
			continue
		}
		// A split that tells no two of them apart (each serves the same
		// hosts: sibling `handle` blocks, a session in the error routes,
		// under a site of the host * or one host's handle) would only
		// rename the realm they share, and lose its sessions at the
		// upgrade.
		first := w.sites[group[0]]
		first.split = true
		if !slices.ContainsFunc(group[1:], func(h *Handler) bool {
			at := w.sites[h]
			at.split = true
			return at.realm() != first.realm()
		}) {
			continue
		}
		for _, h := range group {
			at := w.sites[h]
			at.split = true
			w.sites[h] = at
		}
	}
}

// splitCookies gives the handlers of one default realm and one store that
// use different cookies (`handle /shop/*` and `handle /forum/*` of a
// site, each with a cookie name of its own, or a path of its own, on the
// default store; a nested /admin with a login of its own) a realm per
// cookie: browsers keep their cookies apart, and so must the store.
// Sharing the realm, the shop served a client that sent the ID of its
// forum session as shop_sid that session, and its app took the forum's
// user (or one the forum let a visitor choose) for a user of its own. A
// handler of the default cookie (sid, path /) keeps the realm's name, so
// that a site's own sessions survive the upgrade; sessions of the others
// start again.
func (w *walker) splitCookies() {
	type group struct{ realm, store string }
	cookieOf := func(h *Handler) string {
		if h.cookie.Path == "/" {
			return h.cookie.Name
		}
		return h.cookie.Name + " path " + h.cookie.Path
	}
	cookies := map[group][]string{}
	for h, at := range w.sites {
		g := group{at.realm(), h.storeName}
		if h.Realm == "" && !slices.Contains(cookies[g], cookieOf(h)) {
			cookies[g] = append(cookies[g], cookieOf(h))
		}
	}
	for h, at := range w.sites {
		if h.Realm != "" || cookieOf(h) == session.DefaultCookieName || len(cookies[group{at.realm(), h.storeName}]) < 2 {
			continue
		}
		at.cookie = cookieOf(h)
		w.sites[h] = at
	}
}

// servesAll reports whether every handler of group sits within o's route
// list, and is reached on hosts o is: o serves their requests first (the
// site's handler, and a stricter one nested in it). A site with no hosts
// is not one of the others on its port, which have their own route lists.
func (w *walker) servesAll(o *Handler, group []*Handler) bool {
	outer := w.sites[o].hosts
	for _, h := range group {
		if !w.scopes[o].encloses(w.scopes[h]) {
			return false
		}
		if len(outer) == 0 {
			continue // every host
		}
		inner := w.sites[h].hosts
		if len(inner) == 0 || slices.ContainsFunc(inner, func(host string) bool {
			return !slices.ContainsFunc(outer, func(oh string) bool { return hostCovers(oh, host) })
		}) {
			return false
		}
	}
	return true
}

// underSession reports whether s or a route list around it holds a
// session handler, or is a named route that an invoke under one calls.
func (s *scope) underSession() bool {
	for ; s != nil; s = s.parent {
		if len(s.handlers) > 0 || s.invoked {
			return true
		}
	}
	return false
}

// encloses reports whether sc is s or a route list within it.
func (s *scope) encloses(sc *scope) bool {
	for ; sc != nil; sc = sc.parent {
		if sc == s {
			return true
		}
	}
	return false
}

// narrowHosts returns the hosts a route matching inner serves within
// routes that match outer (no hosts: every host): those of each list that
// a host of the other covers. A site of two hosts with a `handle` (or a
// `session @matcher`) per host serves one host in each, and each is a
// realm of its own; the union of the lists made them one realm, where a
// session made on one host opened on the other, with another app behind
// it. Lists that share no host (a route never reached, or hosts with
// placeholders) keep both.
func narrowHosts(outer, inner []string) []string {
	switch {
	case len(inner) == 0:
		return outer
	case len(outer) == 0:
		return slices.Clone(inner)
	}
	var both []string
	for _, pair := range [2][2][]string{{inner, outer}, {outer, inner}} {
		for _, h := range pair[0] {
			if slices.ContainsFunc(pair[1], func(o string) bool { return hostCovers(o, h) }) {
				both = append(both, h)
			}
		}
	}
	if len(both) == 0 {
		return append(slices.Clone(outer), inner...)
	}
	return both
}

// holds reports whether a handler at o is of the site s: the same listen
// addresses, and the hosts of s, or hosts matched within them (a site
// with no hosts holds only handlers that match none either).
func (s site) holds(o site) bool {
	if !slices.Equal(sortedCopy(s.listen), sortedCopy(o.listen)) || len(o.path) < len(s.path) {
		return false
	}
	if len(s.path) == 0 {
		return len(o.path) == 0
	}
	return slices.Equal(s.path, o.path[:len(s.path)])
}

func sortedCopy(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return out
}

// noTouch records the session matchers of a handler's no_touch, flash_on
// and devices, which read through that handler unless they name another's
// cookie.
func (w *walker) noTouch(h *Handler, sc *scope) {
	own := &scope{parent: sc, handlers: []*Handler{h}}
	for _, sets := range []caddyhttp.MatcherSets{h.noTouch, h.flashOn, h.devices} {
		for _, set := range sets {
			w.matcherSet(set, own)
		}
	}
}

// matcherSet records the session matchers of a matcher set, also inside
// `not`, and returns the hosts it matches.
func (w *walker) matcherSet(set caddyhttp.MatcherSet, sc *scope) []string {
	var hosts []string
	for _, m := range set {
		switch m := m.(type) {
		case *MatchSession:
			w.matchers[m] = sc
		case *caddyhttp.MatchNot:
			for _, inner := range m.MatcherSets {
				w.matcherSet(inner, sc) // hosts under `not` are not the site's
			}
		case *caddyhttp.MatchHost:
			hosts = append(hosts, *m...)
		}
	}
	return hosts
}

// handlerFor ties a matcher to the handler it reads through: the one with
// its cookie, if it names one, nearest to it; else the single handler of
// its nearest enclosing route list that has any.
func handlerFor(m *MatchSession, sc *scope, all []*Handler) (*Handler, error) {
	for s := sc; s != nil; s = s.parent {
		candidates := s.handlers
		if m.Cookie != "" {
			candidates = withCookie(candidates, m.Cookie)
		}
		switch len(candidates) {
		case 0:
			continue
		case 1:
			return candidates[0], nil
		default:
			return nil, fmt.Errorf("session matcher on %q: %d session handlers share its route list; name the cookie of one: `session %s { cookie <name> }` (in JSON, the matcher's \"cookie\")",
				m.Key, len(candidates), m.Key)
		}
	}
	if m.Cookie == "" {
		return nil, fmt.Errorf("session matcher on %q: no session handler in its site or route; add a session directive there, or name the cookie of one: `session %s { cookie <name> }`", m.Key, m.Key)
	}
	named := withCookie(all, m.Cookie)
	switch len(named) {
	case 0:
		return nil, fmt.Errorf("session matcher on %q: no session handler has cookie %q; add a session directive with that cookie", m.Key, m.Cookie)
	case 1:
		return named[0], nil
	default:
		return nil, fmt.Errorf("session matcher on %q: %d session handlers in other sites have cookie %q; move the matcher into the site of the one it means", m.Key, len(named), m.Cookie)
	}
}

func withCookie(handlers []*Handler, name string) []*Handler {
	var out []*Handler
	for _, h := range handlers {
		if h.cookie.Name == name {
			out = append(out, h)
		}
	}
	return out
}

// warnSharedCookies warns when handlers that read different sessions use
// one cookie name on hosts a browser cannot tell apart (browsers ignore
// ports): each one's cookie replaces the other's. Different sessions are
// those of another realm, or of one realm in another store or
// fallback_store: a handler nested in another of them never reads its
// own, since the outer one takes the cookie off the request, and its
// first write replaces the user's cookie.
func (a *App) warnSharedCookies(handlers []*Handler, sites map[*Handler]site) {
	for i, h := range handlers {
		for _, o := range handlers[i+1:] {
			if h.sharesLoad(o) || h.cookie.Name != o.cookie.Name || h.cookie.Domain != o.cookie.Domain {
				continue
			}
			if !hostsOverlap(sites[h].hosts, sites[o].hosts) {
				continue
			}
			if h.realm != o.realm {
				a.logger.Warn("two session realms use one cookie name on hosts a browser does not tell apart (browsers ignore ports): a login on one ends the other's session in that browser; give one of them another cookie name, or, for one site on several ports (a server, and so a realm, per port), name its realm",
					zap.String("cookie", h.cookie.Name), zap.Strings("realms", []string{h.realm, o.realm}))
				continue
			}
			a.logger.Warn("two session handlers of one realm use one cookie name with different stores: each one's cookie replaces the other's, and one nested in the other never reads its sessions; give them one store (fallback_store to move sessions), or one of them another cookie name",
				zap.String("cookie", h.cookie.Name), zap.String("realm", h.realm),
				zap.Strings("stores", []string{h.storeChain(), o.storeChain()}))
		}
	}
}

// warnSplitIdentity warns when handlers of one realm and store have
// different identity keys (identity_key, or the first renew_on key). They
// share sessions, but each indexes a session's user under its own key
// when it writes it, and finds a user's sessions under its own: the
// logout everywhere, max_sessions_per_identity, devices and the
// revocations of one miss the sessions the other wrote last, and a
// session may stay logged in after its user logged out everywhere.
func (a *App) warnSplitIdentity(handlers []*Handler) {
	for i, h := range handlers {
		for _, o := range handlers[i+1:] {
			if h.realm != o.realm || h.storeName != o.storeName || h.identity == o.identity {
				continue
			}
			a.logger.Warn("two session handlers of one realm and store have different identity keys: a logout everywhere, max_sessions_per_identity, devices and revocations by user through one miss the sessions the other wrote last; give them one identity_key (or the same first renew_on key), or another realm",
				zap.String("realm", h.realm), zap.String("store", h.storeName),
				zap.Strings("identity_keys", []string{h.identity, o.identity}))
		}
	}
}

// storeChain names the handler's store, and its fallback_store if any.
func (h *Handler) storeChain() string {
	if h.fallbackName == "" {
		return h.storeName
	}
	return h.storeName + " (fallback_store " + h.fallbackName + ")"
}

// hostsOverlap reports whether two host lists may match one host; an empty
// list matches every host.
func hostsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, h := range a {
		for _, o := range b {
			if hostCovers(h, o) || hostCovers(o, h) {
				return true
			}
		}
	}
	return false
}

// hostCovers reports whether the host pattern (a name, or *.name for one
// label) matches host, which may be a pattern too.
func hostCovers(pattern, host string) bool {
	if strings.EqualFold(pattern, host) {
		return true
	}
	suffix, wild := strings.CutPrefix(pattern, "*")
	if !wild || !strings.HasPrefix(suffix, ".") {
		return false
	}
	host = strings.TrimPrefix(host, "*")
	label, rest, ok := strings.Cut(host, ".")
	return ok && label != "" && !strings.Contains(label, ".") && strings.EqualFold("."+rest, suffix) || strings.EqualFold(host, suffix)
}
