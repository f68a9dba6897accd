package caddysession

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-session/caddy-session/session"
)

func init() {
	caddy.RegisterModule(ErrorGuard{})
}

// ErrorGuard keeps the session's headers off error responses. Caddy runs
// a server's error routes (handle_errors) outside every handler of its
// primary routes, the session handler included, so an app that an error
// route proxies to could send commands that nothing removes. The guard
// removes every header in the namespace from the response, whenever it is
// written, and applies no command: an error response is not a success.
//
// It must be the first of a server's error routes, or of its site's, so
// that it wraps the others; a config that puts another error route before
// it is refused. The Caddyfile's session directive adds it to its site's
// error routes by itself.
type ErrorGuard struct {
	// The namespace to remove: the session handler's header_prefix.
	// Default: `X-Session-`.
	HeaderPrefix string `json:"header_prefix,omitempty"`

	protocol *session.Protocol
	logger   *zap.Logger
	// alone: the guards are the only error routes, so Caddy answers every
	// error with its empty response, as it does without error routes.
	alone bool
	// app is the config's session app, and handlers the session handlers
	// of the guard's server, which its wiring finds (wiring.go): their
	// namespaces and cookies are what the guard removes from a request
	// that no session handler reached.
	app      *App
	handlers []*Handler
	// rest are the error routes Caddy would have run after the guard's
	// route had the site no error routes (errorfallthrough.go).
	rest caddyhttp.RouteList
}

// CaddyModule returns the Caddy module information.
func (ErrorGuard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session_errors",
		New: func() caddy.Module { return new(ErrorGuard) },
	}
}

// Provision sets up the guard and checks its place among the routes.
func (g *ErrorGuard) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	prefix := g.HeaderPrefix
	if prefix == "" {
		prefix = session.DefaultHeaderPrefix
	}
	if !session.ValidPrefix(prefix) {
		return fmt.Errorf("header_prefix %q must be a header name ending in '-'", prefix)
	}
	g.protocol = session.NewProtocol(prefix, nil, session.DefaultLimits())
	if err := checkPrefixCovers(prefix, g.protocol); err != nil {
		return err
	}
	app, err := sessionApp(ctx)
	if err != nil {
		return err
	}
	g.app = app
	return g.checkPlace(ctx)
}

// checkPlace refuses a guard that comes after another route in its route
// list: that route could answer first, with whatever headers the app sent.
// In the Caddyfile this happens when a handle_errors block with status
// codes is written above the session directive, since Caddy keeps such
// blocks in the order written, ahead of the rest. It also notes whether
// the guards are the only routes of the list.
//
// The list is found through the module that is provisioning the guard: the
// site's subroute in the Caddyfile's layout, or the HTTP app itself when a
// server's error routes are not wrapped in one. Elsewhere nothing is
// checked.
func (g *ErrorGuard) checkPlace(ctx caddy.Context) error {
	mods := ctx.Modules()
	if len(mods) < 2 {
		return nil
	}
	var lists []caddyhttp.RouteList
	switch parent := mods[len(mods)-2].(type) {
	case *caddyhttp.Subroute:
		lists = append(lists, parent.Routes)
		if parent.Errors != nil {
			lists = append(lists, parent.Errors.Routes)
		}
	case *caddyhttp.App:
		for _, srv := range parent.Servers {
			if srv.Errors != nil {
				lists = append(lists, srv.Errors.Routes)
			}
		}
	}
	found, alone := false, true
	for _, routes := range lists {
		guarded, others := false, false
		for i, route := range routes {
			guards, all := guardsIn(route)
			switch {
			case guards > 0 && others:
				return fmt.Errorf("session_errors is error route %d, after another that could answer first "+
					"with the app's session headers: it must come first; in a Caddyfile, write the session "+
					"directive above every handle_errors block of the site that names status codes", i)
			case guards > 0:
				guarded = true
				others = others || !all
			default:
				others = true
			}
		}
		if guarded {
			found = true
			alone = alone && !others
		}
	}
	g.alone = found && alone
	return nil
}

// guardsIn counts the guards among the handlers of route, and reports
// whether they are all it has. The routes before the guard's own are
// provisioned already: Caddy has decoded their handlers and dropped their
// JSON.
func guardsIn(route caddyhttp.Route) (guards int, all bool) {
	if route.Handlers != nil {
		for _, h := range route.Handlers {
			if _, ok := h.(*ErrorGuard); ok {
				guards++
			}
		}
		return guards, guards == len(route.Handlers)
	}
	for _, raw := range route.HandlersRaw {
		var h struct {
			Handler string `json:"handler"`
		}
		if json.Unmarshal(raw, &h) == nil && h.Handler == "session_errors" {
			guards++
		}
	}
	return guards, guards == len(route.HandlersRaw)
}

// ServeHTTP runs the error routes after it with the namespace removed from
// their response.
func (g *ErrorGuard) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := g.scrubRequest(r); err != nil {
		return err
	}
	gw := &guardWriter{headerGate: headerGate{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}, guard: g,
		request: r, private: sessionPrivate(r)}
	gw.writeHeader = gw.WriteHeader
	if len(g.rest) > 0 {
		next = g.rest.Compile(next) // an error path: compiled when taken
	}
	err := next.ServeHTTP(gw, r)
	// Trailers are sent after this returns; and if the error routes
	// failed without answering, Caddy writes the status with what the
	// header holds.
	g.protocol.Scrub(w.Header())
	if err == nil && g.alone {
		g.logError(r)
	}
	return err
}

// scrubRequest removes from a request that no session handler has reached
// what a session handler would have removed before the error routes get
// it: the namespaces (the guard's and those of the config's handlers), in any
// spelling, from headers and trailers, and the session cookies of the
// handlers that do not forward theirs or whose errors another site's
// routes may answer. An error raised before the
// session handler ran (request_body's 413 for a body over max_size, which
// Caddy orders before session) otherwise sent an error route that
// proxies to the app the client's X-Session-User and the raw session ID.
// A request that a session handler reached keeps what it forwarded; the
// cookies of handlers it did not reach (a nested one) are removed all the
// same.
func (g *ErrorGuard) scrubRequest(r *http.Request) error {
	if err := g.app.wired(); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if caddyhttp.GetVar(r.Context(), scrubbedVar) == nil {
		scrubRequest(r, g.protocol)
		for _, h := range g.handlers {
			scrubRequest(r, h.protocol)
			for _, p := range h.others { // the config's other namespaces
				scrubRequest(r, p)
			}
		}
	}
	for _, h := range g.handlers {
		// A forward_cookie handler's cookie is for its own app and its
		// site's error routes: not for another site's, which answer
		// its errors (foreignErrors) after the guard of a site without
		// error routes (errorfallthrough.go), also for an error raised
		// before the handler ran.
		if !h.ForwardCookie || h.foreignErrors {
			h.cookie.Strip(r.Header)
		}
		h.stripForeign(r)
	}
	return nil
}

// inErrorRoute reports whether r is served by an error route
// (handle_errors): Caddy gives such a request the error of the routes that
// failed, as file_server and respond read it.
func inErrorRoute(r *http.Request) bool {
	_, ok := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	return ok
}

// serveErrorRoute serves a request that reaches h in an error route: a
// session written inside handle_errors, or a named route with the
// site's session that an error route invokes again. h acts there as the
// error guard of its server does (inErrors), not as a session handler: it
// loads, forwards and takes nothing, cleans the request as the guard does,
// and removes the namespace from the answer, applying no command and
// setting no cookie. The error route gets what the site's
// handler forwarded before the error, and nothing more. As a handler, it
// loaded the session again (or took over the site's load), forwarded it
// to the app and applied the app's commands on the error response: a
// cross-site POST that the site's CSRF check refused with a 403 reached
// the app behind handle_errors as the user, and its login of another user
// was applied, with a new cookie.
func (h *Handler) serveErrorRoute(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.inErrors.ServeHTTP(w, r, next)
}

// sessionPrivate reports whether a session handler loaded a live session
// for the request and keeps shared caches off its responses: the error
// routes get the request as that handler left it, the session's keys
// forwarded, and an error page that proxies to the app is rendered for
// the user (a 404 with the user's name in its menu), as the handler's
// own responses are (privateToSharedCaches). Any of the request's loads
// counts, for a site with several sessions.
func sessionPrivate(r *http.Request) bool {
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	for key, v := range vars {
		s, ok := v.(*requestState)
		if ok && strings.HasPrefix(key, stateVar) && s.record != nil && !s.handler.sharedCacheAllowed {
			return true
		}
	}
	return false
}

// loggedVar marks a request whose error a guard has logged, so that the
// second of two sessions' guards does not log it again.
const loggedVar = "\x00caddy-session-error-logged"

// logError logs the request's error as Caddy does for a server without
// error routes, at error level for a 5xx and debug otherwise. Once there is
// an error route, even one that leaves the answer to Caddy, Caddy logs the
// error at debug level only, and a 502 from an unreachable app would no
// longer show in the log.
func (g *ErrorGuard) logError(r *http.Request) {
	// The mark is kept in the replacer, whose static values a lock
	// guards, not among the vars: reverse_proxy's dialer may still read
	// those from a goroutine of its own.
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	if _, logged := repl.Get(loggedVar); logged {
		return
	}
	repl.Set(loggedVar, true)
	err, _ := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	if err == nil {
		return
	}
	status, msg := http.StatusInternalServerError, err.Error()
	// The request as the session handlers left it carries what they
	// forwarded to the app (values, tokens): logged, then, without the
	// namespace of any handler of the server, not only the guard's own
	// (a second session with another header_prefix, beside the first or
	// nested in a route, forwards under its own).
	logged := *r
	logged.Header = r.Header.Clone()
	g.protocol.Scrub(logged.Header)
	for _, h := range g.handlers {
		h.protocol.Scrub(logged.Header)
	}
	fields := []zap.Field{zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: &logged})}
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok {
		status = he.StatusCode
		if he.Err != nil {
			msg = he.Err.Error()
		}
		fields = append(fields, zap.Int("status", he.StatusCode), zap.String("err_id", he.ID), zap.String("err_trace", he.Trace))
	} else {
		fields = append(fields, zap.Error(err))
	}
	level := zapcore.DebugLevel
	if status >= http.StatusInternalServerError {
		level = zapcore.ErrorLevel
	}
	if c := g.logger.Check(level, msg); c != nil {
		c.Write(fields...)
	}
}

// guardWriter removes the namespace from the response header when it is
// written, however that happens (WriteHeader, Write, ReadFrom, Flush).
type guardWriter struct {
	headerGate
	guard   *ErrorGuard
	request *http.Request
	// private: the request carried a live session to the app
	// (sessionPrivate), so shared caches must not store the answer.
	private bool
}

func (w *guardWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.guard.screenAppCookies(w.request, w.Header())
	if patch, err := w.guard.protocol.TakeCommands(w.Header()); patch != nil || err != nil {
		if c := w.guard.logger.Check(zapcore.DebugLevel, "removed session commands from an error response; error routes apply none"); c != nil {
			c.Write(zap.Int("status", status))
		}
	}
	w.wroteHeader = status >= http.StatusOK || status == http.StatusSwitchingProtocols
	if w.private && status >= http.StatusOK {
		privateToSharedCaches(w.Header())
	}
	w.ResponseWriter.WriteHeader(status)
}

// errorGuardRoute is what the Caddyfile's session directive adds to its
// site's error routes: the guard, for the directive's header prefix.
func errorGuardRoute(h httpcaddyfile.Helper, prefix string) httpcaddyfile.ConfigValue {
	route := caddyhttp.Route{
		// A matcher that matches every request: Caddy puts the
		// handle_errors blocks that have one (those with status codes)
		// ahead of the others, in the order written, and the guard must
		// come first.
		MatcherSetsRaw: caddyhttp.RawMatcherSets{{"path": h.JSON(caddyhttp.MatchPath{"*"})}},
		HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(
			&ErrorGuard{HeaderPrefix: prefix}, "handler", "session_errors", nil)},
	}
	return httpcaddyfile.ConfigValue{Class: "error_route", Value: &caddyhttp.Subroute{Routes: caddyhttp.RouteList{route}}}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*ErrorGuard)(nil)
	_ caddyhttp.MiddlewareHandler = (*ErrorGuard)(nil)
	_ http.Flusher                = (*guardWriter)(nil)
	_ io.ReaderFrom               = (*guardWriter)(nil)
)
