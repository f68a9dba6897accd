package caddysession

import (
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
)

// match: the requests a handler gives sessions to (`session /app/*` in a
// Caddyfile). A matcher on the handler's route would let every other
// request pass by the handler untouched, and with it whatever the client
// sent in the namespace (X-Session-User: admin) and the raw session ID in
// its Cookie header, to the same app, which trusts the namespace on every
// path. So the matcher is the handler's own: a request it does not match
// gets no session, but the handler still removes the namespace and the
// session cookie from it, and the namespace from its response.

// provisionMatch loads the matcher sets of match.
func (h *Handler) provisionMatch(ctx caddy.Context) error {
	h.forwardedVar = forwardedVarPrefix + h.protocol.Namespace()
	if len(h.MatchRaw) == 0 {
		return nil // h.match stays nil: every request gets its session
	}
	mods, err := ctx.LoadModule(h, "MatchRaw")
	if err != nil {
		return fmt.Errorf("loading match matchers: %v", err)
	}
	return h.match.FromInterface(mods)
}

// gives reports whether h gives the request a session: whether its own
// match, if any, matches it. An error of the matchers is a 500, as a
// route's would be.
func (h *Handler) gives(r *http.Request) (bool, error) {
	if h.match == nil {
		return true, nil
	}
	matched, err := h.match.AnyMatchWithError(r)
	if err != nil {
		return false, caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("matching the request against the session's match: %w", err))
	}
	return matched, nil
}

// forwardedVarPrefix, with a folded header prefix, names the request var
// that says a session handler of that namespace has forwarded its session
// to the request (a *forwarded): a handler after it that does not match
// the request must leave the namespace alone.
const forwardedVarPrefix = "\x00caddy-session-forwarded:"

// forwarded is what the handlers of one namespace that forwarded their
// sessions to a request left on it besides the namespace: the session
// cookies they forward as well (forward_cookie). A handler after them
// that does not match the request leaves those, and takes its own cookie
// off the request as it always does.
type forwarded struct {
	cookies []string
}

// markForwarded notes that h forwards its session to the request, for the
// handlers of its namespace that come after it and do not match the
// request. Only a server where some handler has its own matcher needs it.
func (h *Handler) markForwarded(r *http.Request) {
	if !h.marksForwarded {
		return
	}
	f, _ := caddyhttp.GetVar(r.Context(), h.forwardedVar).(*forwarded)
	if f == nil {
		f = new(forwarded)
		caddyhttp.SetVar(r.Context(), h.forwardedVar, f)
	}
	if h.ForwardCookie && !slices.Contains(f.cookies, h.cookie.Name) {
		f.cookies = append(f.cookies, h.cookie.Name)
	}
}

// setMarksForwarded has the handlers of one server mark the requests they
// forward their sessions to, if any of them has matchers of its own.
func setMarksForwarded(handlers []*Handler) {
	some := slices.ContainsFunc(handlers, func(h *Handler) bool { return h.match != nil })
	for _, h := range handlers {
		h.marksForwarded = some
	}
}

// serveUnmatched serves a request that h's matchers do not match: no
// session, but nothing of the client's in the namespace reaches the app,
// nor the session cookie, and no namespace header of the app's reaches the
// client. If a handler of the same namespace before h has forwarded its
// session to the request, what is in the namespace is that handler's, and
// h leaves it and the response to that handler; but h's session cookie
// still goes, unless that handler forwards a cookie of its name: left
// there, the app on the other handler's paths got the raw ID of every
// session h gives, from every visitor who has both.
func (h *Handler) serveUnmatched(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if f, ok := caddyhttp.GetVar(r.Context(), h.forwardedVar).(*forwarded); ok {
		if !h.ForwardCookie && !slices.Contains(f.cookies, h.cookie.Name) {
			h.stashCookie(r)
		} else if h.ForwardCookie {
			h.restoreCookie(r)
		}
		h.stripForeign(r)
		err := next.ServeHTTP(w, r)
		h.leaveCookieToErrorRoutes(r, err)
		return err
	}
	scrubRequest(r, h.protocol)
	h.scrubOthersFirst(r)
	if !h.ForwardCookie {
		h.stashCookie(r)
	} else {
		h.restoreCookie(r)
	}
	h.stripForeign(r)
	uw := &unmatchedWriter{headerGate: headerGate{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}, handler: h, request: r}
	uw.writeHeader = uw.WriteHeader
	err := next.ServeHTTP(uw, r)
	h.leaveCookieToErrorRoutes(r, err)
	// Trailers are sent after this returns; and if the handlers after h
	// failed without answering, Caddy writes the status with what the
	// header holds.
	h.protocol.Scrub(w.Header())
	return err
}

// leaveCookieToErrorRoutes takes the cookie of forward_cookie, which h
// kept on a request it did not match, off the request when its error may
// reach another site's error routes (foreignErrors), as a matched request
// has it taken off (leaveToErrorRoutes): a catch-all's handle_errors that
// proxies to its own app got the raw session ID.
func (h *Handler) leaveCookieToErrorRoutes(r *http.Request, err error) {
	if err != nil && h.ForwardCookie && h.foreignErrors {
		h.cookie.Strip(r.Header)
	}
}

// cookieStashPrefix, with a cookie name, names the request var that holds
// the session IDs a handler that did not match the request took off it
// with its cookie: a handler after it of the same cookie name that matches
// the request reads them there. Two hosts of one site, each with a
// session of its own (`session @a`, `session @b`, both with the default
// cookie), would otherwise lose the second one's cookie to the first.
const cookieStashPrefix = "\x00caddy-session-cookie:"

// stashCookie removes h's session cookie from the request, keeping the
// IDs it held for a handler after h that matches the request.
func (h *Handler) stashCookie(r *http.Request) { stashCookie(h.cookie, r) }

// stashCookie removes the cookie c from the request, keeping the IDs it
// held for a handler of that cookie after the one that removes it.
func stashCookie(c *session.Cookie, r *http.Request) {
	if ids := c.AppendCandidates(nil, r); len(ids) > 0 {
		key := cookieStashPrefix + c.Name
		if _, kept := caddyhttp.GetVar(r.Context(), key).([]string); !kept {
			caddyhttp.SetVar(r.Context(), key, ids)
		}
	}
	c.Strip(r.Header)
}

// appendStashed appends to ids, the candidates of h's cookie in the
// request, those that a handler before h that did not match the request
// took off it (stashCookie), as far as there is room.
func (h *Handler) appendStashed(ids []string, r *http.Request) []string {
	stashed, _ := caddyhttp.GetVar(r.Context(), cookieStashPrefix+h.cookie.Name).([]string)
	for _, id := range stashed {
		if len(ids) == session.MaxCandidates {
			break
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// unmatchedWriter removes the namespace from the response to a request
// that h does not match, however the header is written (WriteHeader,
// Write, ReadFrom, Flush), and applies no command: there is no session.
type unmatchedWriter struct {
	headerGate
	handler *Handler
	request *http.Request
}

func (w *unmatchedWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.handler.screenAppCookies(w.request, w.Header())
	if patch, err := w.handler.protocol.TakeCommands(w.Header()); patch != nil || err != nil {
		w.handler.logger.Warn("ignoring session commands on a response to a request the session's matchers do not match; match the request to give it a session",
			zap.Int("status", status), zap.String("uri", w.request.RequestURI))
	}
	w.handler.protocol.Scrub(w.Header())
	w.wroteHeader = status >= http.StatusOK || status == http.StatusSwitchingProtocols
	w.ResponseWriter.WriteHeader(status)
}

// Interface guards
var (
	_ http.Flusher  = (*unmatchedWriter)(nil)
	_ io.ReaderFrom = (*unmatchedWriter)(nil)
)
