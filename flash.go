package caddysession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Flash values: a response's X-Session-Flash-<Key>: <value> stores a value
// with the session (the protocol parses it, store.Decide stores it), and
// the next request of the session that matches flash_on (by default a
// top-level navigation) takes it from the store, in one atomic update
// before the request goes on, and hands it to the app as the request
// header X-Session-Flash-<Key>. A response of 500 or more, an error of
// the plugin, or a refusal of Caddy's that no app answered, puts it back.
// A session without flash values costs nothing
// here: no matcher runs, and nothing is written.

// flashTake is what one request took of its session's flash values.
type flashTake struct {
	values map[string]string
	hash   session.Hash // the session they were taken from
	seen   string       // its identity value when they were taken
	// settled: the response consumed them, or they were put back.
	settled bool
	// withheld: a nested handler served the request as anonymous, so
	// the app did not get them; they are put back whatever the response.
	withheld bool
}

// provisionFlashOn loads the matcher sets of flash_on.
func (h *Handler) provisionFlashOn(ctx caddy.Context) error {
	if len(h.FlashOnRaw) == 0 {
		return nil // h.flashOn stays nil: top-level navigations
	}
	mods, err := ctx.LoadModule(h, "FlashOnRaw")
	if err != nil {
		return fmt.Errorf("loading flash_on matchers: %v", err)
	}
	return h.flashOn.FromInterface(mods)
}

// handFlash hands the app the session's flash values, when the session
// holds some and the request matches flash_on: it takes them from the
// store, so that no other request gets them, and adds them to the request
// as X-Session-Flash-<Key>. Call it after the namespace was scrubbed from
// the request. An error is the request's.
func (s *requestState) handFlash(r *http.Request) error {
	h := s.handler
	if f := s.flash; f != nil {
		// Taken for this request by another handler of the same store
		// and realm, whose headers this handler's scrub removed.
		h.protocol.ForwardFlash(r.Header, f.values)
		return nil
	}
	if len(s.record.Flash) == 0 || s.degraded {
		return nil // the read path; or a copy, whose flash values stay in the store
	}
	on, err := h.flashOnMatches(r)
	if err != nil {
		h.logger.Error("matching the request against flash_on",
			zap.String("session", s.hash.Short()), zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("matching the request against flash_on: %w", err))
	}
	if !on {
		return nil
	}
	seen, _ := h.rules.identityOf(s.record)
	u := s.flashUpdate(s.hash, seen)
	u.TakeFlash = true
	res, err := s.storeUpdate(r.Context(), u)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrStale):
		return nil // the session ended or moved on since it was loaded
	case err != nil:
		h.logger.Error("taking flash values from the store",
			zap.String("session", s.hash.Short()), zap.Error(err))
		if h.lenient(decisionFlashSkipped, s.hash, err) {
			return nil
		}
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("taking flash values: %w", err))
	case len(res.Flash) == 0:
		return nil // another request took them first
	}
	s.flash = &flashTake{values: res.Flash, hash: res.Hash, seen: seen}
	h.protocol.ForwardFlash(r.Header, res.Flash)
	if ce := h.logger.Check(zap.DebugLevel, "handed flash values to the app"); ce != nil {
		ce.Write(zap.String("session", res.Hash.Short()), zap.Int("values", len(res.Flash)))
	}
	return nil
}

// flashOnMatches reports whether the request is one that flash values are
// handed on: one that matches flash_on, or by default a top-level
// navigation. A page the browser loads ahead of the user (speculative) is
// never one, whatever flash_on says: it may never be shown, and a
// speculation rule of the page prefetches the very paths flash_on names.
func (h *Handler) flashOnMatches(r *http.Request) (bool, error) {
	if speculative(r.Header) {
		return false, nil
	}
	if h.flashOn == nil {
		return navigation(r), nil
	}
	return h.flashOn.AnyMatchWithError(r)
}

// navigation reports whether r is a top-level navigation: a browser sends
// Sec-Fetch-Mode: navigate with it, and fetch(), XMLHttpRequest, images,
// scripts and styles get another mode. A frame's navigation (an iframe,
// an embed) is one too, and Sec-Fetch-Dest tells it apart: document for
// the top level. A page the browser loads ahead, in case the user goes
// there (speculation rules, link prefetch, a preview), is sent as a
// navigation but is none (flashOnMatches turns it away). From a client
// that sends no Sec-Fetch-Mode (an older browser, or no browser), a
// request that accepts text/html is taken for one.
func navigation(r *http.Request) bool {
	if mode, ok := r.Header["Sec-Fetch-Mode"]; ok {
		dest, sent := r.Header["Sec-Fetch-Dest"] // not by every browser that sends the mode
		return single(mode, "navigate") && (!sent || single(dest, "document"))
	}
	for _, accept := range r.Header["Accept"] {
		if strings.Contains(strings.ToLower(accept), "text/html") {
			return true
		}
	}
	return false
}

// speculative reports whether h is the header of a load the browser makes
// ahead of the user: Sec-Purpose (prefetch, prefetch;prerender) from
// Chromium's speculation rules and Firefox's link prefetch, and the older
// Purpose: prefetch, X-Moz: prefetch and Safari's X-Purpose: preview.
func speculative(h http.Header) bool {
	if _, ok := h["Sec-Purpose"]; ok {
		return true
	}
	for _, name := range [...]string{"Purpose", "X-Purpose", "X-Moz"} {
		for _, v := range h[name] {
			v = strings.ToLower(v)
			if strings.Contains(v, "prefetch") || strings.Contains(v, "preview") {
				return true
			}
		}
	}
	return false
}

// single reports whether a Fetch Metadata header's values are one, want,
// in any case: several are no answer a browser gives.
func single(values []string, want string) bool {
	return len(values) == 1 && strings.EqualFold(strings.TrimSpace(values[0]), want)
}

// settleFlash decides, once the response's status is known, what becomes
// of the flash values the request took: a response that says the request
// was not carried out (notCarriedOut: the app's status decides, as for
// its commands), one that failed in the plugin (failed), or one whose
// client went away before it began (clientGone) consumes nothing, and
// they are put back for a later request, as are values the app never got
// (withheld) and those of a request Caddy refused before any app answered
// (settleFlashOnError); any other response consumes them.
func (s *requestState) settleFlash(status int, failed bool) {
	f := s.flash
	if f == nil || f.settled {
		return
	}
	f.settled = true
	if !notCarriedOut(status) && !failed && !f.withheld && !clientGone(s.request) {
		return
	}
	h := s.handler
	u := s.flashUpdate(f.hash, f.seen)
	u.RestoreFlash = f.values
	// The client may be gone; the values must not go with it.
	ctx := context.WithoutCancel(s.request.Context())
	_, err := s.storeUpdate(ctx, u)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrStale):
		if ce := h.logger.Check(zap.DebugLevel, "flash values of a failed response not put back: the session ended or moved on"); ce != nil {
			ce.Write(zap.String("session", f.hash.Short()))
		}
	case err != nil:
		h.logger.Error("putting back the flash values of a failed response; they are lost",
			zap.String("session", f.hash.Short()), zap.Int("status", status), zap.Error(err))
	default:
		if ce := h.logger.Check(zap.DebugLevel, "put back the flash values of a failed response"); ce != nil {
			ce.Write(zap.String("session", f.hash.Short()), zap.Int("status", status))
		}
	}
}

// settleFlashOnError settles the flash values of a request that the
// handlers after the session handler answered with an error, before any
// response began: Caddy writes the error response (or runs the error
// routes). A refusal of Caddy's own (a 4xx of basic_auth, request_body,
// error, file_server's 404) with no upstream's answer before it means
// that no app answered the request, and the page the user sees is none
// of the app's: the values are put back for the next navigation, as for
// a failed response, and taken off the request, so that an app behind
// the error routes does not show them a second time. An error that
// answers an upstream's response (a handle_response or intercept route
// that ends in `error`) is the app's answer, and uses them up as its
// status does. It costs nothing when the request took no flash values.
func (s *requestState) settleFlashOnError(err error) {
	f := s.flash
	if f == nil || f.settled {
		return
	}
	status := errorStatus(err)
	refused := !notCarriedOut(status) && !upstreamAnswered(s.request)
	if refused {
		for k := range f.values {
			delete(s.request.Header, s.handler.protocol.FlashHeaderName(k))
		}
	}
	s.settleFlash(status, refused)
}

// upstreamAnswered reports whether an upstream (reverse_proxy, and so
// php_fastcgi and forward_auth) answered r with a response that an error
// after it relays, or intercept handled one: Caddy sets their status
// placeholders when the response arrives. A 2xx is no such answer: a
// handle_response that takes one in place of relaying it runs the routes
// after it (forward_auth's auth service saying go on, an app handing the
// request to file_server), and a refusal of those is Caddy's, of a
// request whose user saw none of the upstream's page.
func upstreamAnswered(r *http.Request) bool {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return true // as before: the error uses the values up
	}
	for _, name := range upstreamStatusPlaceholders {
		if v, ok := repl.Get(name); ok && statusValue(v) >= http.StatusMultipleChoices {
			return true
		}
	}
	return false
}

// flashUpdate is the store update that takes or puts back flash values of
// the session under hash, of identity value seen: it changes nothing else,
// and does not touch the session (the commit does, as for any request).
func (s *requestState) flashUpdate(hash session.Hash, seen string) store.Update {
	h := s.handler
	return s.sealFlash(store.Update{
		Hash: hash, HasHash: true, Seen: seen, NoTouch: true,
		Identity: h.identity, Realm: h.realm,
		Now: s.now, Timeouts: h.timeouts, Limits: h.limits,
	})
}

// clientGone reports whether r's client went away before its response
// began: a browser that leaves a page before it arrives (a click on
// another link, the stop button) resets its HTTP/2 or HTTP/3 stream, or
// closes its HTTP/1.1 connection, and Go cancels the request's context.
// reverse_proxy then answers 499 itself, with no word from the app, and
// the page that took the request's flash values never reaches anyone:
// they are put back, as for a failed response.
func clientGone(r *http.Request) bool {
	return r.Context().Err() != nil
}

// errorStatus is the status Caddy answers a handler's error with.
func errorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) && he.StatusCode != 0 {
		return he.StatusCode
	}
	return http.StatusInternalServerError
}

// unmarshalFlashOn reads the matchers of flash_on, resolved as the site's
// directives resolve theirs; * is every request.
func (h *Handler) unmarshalFlashOn(d *caddyfile.Dispenser) error {
	// *: an empty matcher set, which every request matches.
	sets, err := h.unmarshalMatchers(d, "flash_on", "/account*", caddy.ModuleMap{}, "")
	h.FlashOnRaw = append(h.FlashOnRaw, sets...)
	return err
}
