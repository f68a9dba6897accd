package caddysession

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// no_touch: requests that read the session without extending it. Their
// matchers run when the response comes, once, and only for a request
// whose commit would touch the session; a handler without no_touch runs
// none and keeps nothing of the request.

// provisionNoTouch loads the matcher sets of no_touch.
func (h *Handler) provisionNoTouch(ctx caddy.Context) error {
	if len(h.NoTouchRaw) == 0 {
		return nil // h.noTouch stays nil: no matcher ever runs
	}
	mods, err := ctx.LoadModule(h, "NoTouchRaw")
	if err != nil {
		return fmt.Errorf("loading no_touch matchers: %v", err)
	}
	return h.noTouch.FromInterface(mods)
}

// requestLine is what a rewrite inside the handler changes in place (the
// rewrite, uri, try_files and php_fastcgi directives do): the method and
// URI as the handler got them.
type requestLine struct {
	method, uri string
	url         url.URL
}

// keepRequestLine keeps the request line for no_touch's matchers.
func (s *requestState) keepRequestLine() {
	r := s.request
	s.line = &requestLine{method: r.Method, uri: r.RequestURI, url: *r.URL}
}

// settleTouch decides whether a step that would touch the session does:
// not when the response said X-Session-Touch: false, nor when the request
// matches the no_touch of this handler or of a handler around it that
// handles the same session (rw.matchNoTouch), nor when a handler inside
// this one turned the session away (turnedAway). A touch alone that does
// not touch is no step at all. An error of the matchers fails the commit,
// as a route's would fail the request.
func (s *requestState) settleTouch(rw *responseWriter, p *plan) error {
	if !p.step.touches() {
		return nil
	}
	p.noTouch = p.noTouch || s.turnedAway || s.untouched
	if p.step == stepTouch && s.leftSession {
		// An earlier commit of the request's session, by a handler
		// nested in this one or by this one reached again, ended it or
		// made it another user's: the old session is no longer the
		// request's to touch.
		p.step = stepNone
		return nil
	}
	if !p.noTouch {
		matched, err := rw.matchNoTouch()
		if err != nil {
			s.handler.logger.Error("matching the request against no_touch",
				zap.String("session", s.hash.Short()), zap.Error(err))
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("matching the request against no_touch: %w", err))
		}
		// Told outward (tellOuter) as X-Session-Touch: false is: the
		// handlers around this one commit after it, and would touch
		// the session the request is no use of.
		p.noTouch = matched
		s.untouched = s.untouched || matched
	}
	if p.noTouch && p.step == stepTouch {
		p.step = stepNone
	}
	return nil
}

// matchNoTouch reports whether the request is no use of the session by
// the no_touch of this handler, or of a handler around it that handles
// the same session for the request (a `session` nested in another's
// `handle`, or in a `handle_response`): those commit after this one, too
// late to keep it from touching the session. Each handler's matchers see
// the request as that handler got it. It runs only for a commit or a
// stream that would touch the session, never on the read path.
func (rw *responseWriter) matchNoTouch() (bool, error) {
	s := rw.state
	if s.handler.noTouch != nil {
		if matched, err := s.matchNoTouch(); matched || err != nil {
			return matched, err
		}
	}
	if !s.handler.sharedLoad || s.record == nil {
		return false, nil
	}
	for outer := outerWriter(rw.ResponseWriter); outer != nil; outer = outerWriter(outer.ResponseWriter) {
		o := outer.state
		if o == s || o.record == nil || o.hash != s.hash || o.handler.noTouch == nil || !o.handler.sharesLoad(s.handler) {
			continue
		}
		if matched, err := o.matchNoTouch(); matched || err != nil {
			return matched, err
		}
	}
	return false, nil
}

// matchNoTouch reports whether the request, as the handler got it,
// matches a matcher set of no_touch.
func (s *requestState) matchNoTouch() (bool, error) {
	r := s.request
	if l := s.line; l != nil && (r.Method != l.method || r.RequestURI != l.uri || *r.URL != l.url) {
		// Rewritten since: match a copy with the line restored, leaving
		// the request as the handlers inside made it.
		as := *r
		as.Method, as.RequestURI, as.URL = l.method, l.uri, &l.url
		r = &as
	}
	return s.handler.noTouch.AnyMatchWithError(r)
}
