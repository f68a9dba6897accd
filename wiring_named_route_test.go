package caddysession

import (
	"context"
	"testing"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestWalkMarksNamedRouteProxiesUnderSession: the walk marks the
// handle_response routes of a reverse_proxy in a named route when every
// invoke of it has a session handler on its way, however deep the invokes
// nest; it leaves alone one that a request passing no session handler
// reaches (it may be served while the walk runs), and warns where a named
// route is invoked both ways, since the app's status then does not decide
// there. A named route that no route invokes reaches nothing, and counts
// as no way to the reverse_proxy.
func TestWalkMarksNamedRouteProxiesUnderSession(t *testing.T) {
	invoke := func(name string) caddyhttp.Route {
		return caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&caddyhttp.Invoke{Name: name}}}
	}
	host := func(route caddyhttp.Route, h string) caddyhttp.Route {
		route.MatcherSets = caddyhttp.MatcherSets{{&caddyhttp.MatchHost{h}}}
		return route
	}
	sessionRoute := func() caddyhttp.Route {
		return caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&Handler{cookie: &session.Cookie{Name: "sid"}}}}
	}
	subroute := func(routes ...caddyhttp.Route) caddyhttp.Route {
		return caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&caddyhttp.Subroute{Routes: routes}}}
	}
	cases := []struct {
		name string
		// routes of the server, given the route that holds the proxy
		// (a named route "app" invokes, or the proxy itself)
		routes func() caddyhttp.RouteList
		named  []string // named routes that invoke "app"
		marked bool
		warned bool
	}{
		{"named route invoked by a site with a session handler", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{sessionRoute(), invoke("app")}
		}, nil, true, false},
		{"named route invoked in a subroute of a site with a session handler", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{sessionRoute(), subroute(invoke("app"))}
		}, nil, true, false},
		{"named route invoked through another named route", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{sessionRoute(), invoke("outer")}
		}, []string{"outer"}, true, false},
		{"named route invoked by a site with no session handler", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{invoke("app")}
		}, nil, false, false},
		{"named route invoked by a site with a session handler and by one without", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{
				host(subroute(sessionRoute(), invoke("app")), "a.example"),
				host(subroute(invoke("app")), "b.example"),
			}
		}, nil, false, true},
		{"named route invoked without a session handler first, then with one", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{
				host(subroute(invoke("app")), "b.example"),
				host(subroute(sessionRoute(), invoke("app")), "a.example"),
			}
		}, nil, false, true},
		{"named route invoked by a site with a session handler and by a named route no one invokes", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{sessionRoute(), invoke("app")}
		}, []string{"unused"}, true, false},
		{"named route no one invokes", func() caddyhttp.RouteList {
			return caddyhttp.RouteList{sessionRoute()}
		}, nil, false, false},
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proxy := &reverseproxy.Handler{HandleResponse: []caddyhttp.ResponseHandler{{
				Routes: caddyhttp.RouteList{{Handlers: []caddyhttp.MiddlewareHandler{caddyhttp.StaticResponse{}}}},
			}}}
			named := map[string]*caddyhttp.Route{"app": {Handlers: []caddyhttp.MiddlewareHandler{proxy}}}
			for _, n := range c.named {
				r := invoke("app")
				named[n] = &r
			}
			core, logs := observer.New(zapcore.WarnLevel)
			w := newWalker()
			w.ctx = ctx
			w.server(&caddyhttp.Server{Listen: []string{":443"}, Routes: c.routes(), NamedRoutes: named})
			w.markProxies(zap.New(core))
			if w.err != nil {
				t.Fatalf("the walk failed to mark: %v", w.err)
			}
			routes := proxy.HandleResponse[0].Routes
			first := routes[0]
			_, marked := first.Handlers[0].(replacedError)
			if marked != c.marked {
				t.Errorf("handle_response marked = %v, want %v (routes: %d)", marked, c.marked, len(routes))
			}
			if marked && len(routes) != 2 {
				t.Errorf("handle_response has %d routes after the mark, want the mark and its own route", len(routes))
			}
			if warned := logs.Len() > 0; warned != c.warned {
				t.Errorf("warned = %v (%v), want %v", warned, logs.All(), c.warned)
			}
		})
	}
}
