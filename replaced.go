package caddysession

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// replacedError runs first in each handle_response of reverse_proxy (the
// walk puts it there: markReplaced): when the response that handler
// handles says its request was not carried out (notCarriedOut: an error,
// or 425 Too Early), it marks every session response writer around it.
// Whatever the handler then makes of the error, a second app's answer
// among them, is no success of the request, and no command on it applies
// (the app's status decides: upstreamStatus). The mark is needed because
// Caddy keeps only the latest upstream status in
// {http.reverse_proxy.status_code}: a reverse_proxy in the handle_response
// overwrites the first app's. It costs nothing where no handle_response
// runs.
type replacedError struct{}

func (replacedError) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if v, ok := repl.Get("http.reverse_proxy.status_code"); ok {
			if code := statusValue(v); notCarriedOut(code) && code <= 999 {
				for rw := outerWriter(w); rw != nil; rw = outerWriter(rw.ResponseWriter) {
					if rw.replaced == 0 {
						rw.replaced = uint16(code)
					}
				}
			}
		}
	}
	return next.ServeHTTP(w, r)
}

// markReplaced puts replacedError first in each handle_response of h that
// runs routes, once. It runs in the walk (App.wire), which marks only a
// reverse_proxy with a session handler on its way: a request reaches it
// only after that handler has waited for the walk (wired), so none reads
// h.HandleResponse while the walk extends it, although Caddy may start
// serving before the session app starts. A reverse_proxy reached by
// requests that pass no session handler needs no mark.
func markReplaced(ctx caddy.Context, h *reverseproxy.Handler) error {
	for i := range h.HandleResponse {
		rh := &h.HandleResponse[i]
		if len(rh.Routes) == 0 {
			continue
		}
		if first := rh.Routes[0]; len(first.MatcherSets) == 0 && len(first.Handlers) == 1 {
			if _, ok := first.Handlers[0].(replacedError); ok {
				continue // marked already
			}
		}
		mark := caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{replacedError{}}}
		if err := mark.ProvisionHandlers(ctx, nil); err != nil {
			return err
		}
		rh.Routes = append(caddyhttp.RouteList{mark}, rh.Routes...)
	}
	return nil
}

// replacedStatus is the status that a handler found on an error (or a
// 425) it replaced (replacedError) in the response of rw, or in that of a
// session handler around it; 0 if none. It matters only below 500.
func (rw *responseWriter) replacedStatus() int {
	for o := rw; o != nil; o = outerWriter(o.ResponseWriter) {
		if o.replaced != 0 {
			return int(o.replaced)
		}
	}
	return 0
}
