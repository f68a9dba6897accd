package caddysession

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Remember-me. The app answers a login whose "remember me" box was ticked
// with X-Session-Remember: true: the session gets a new ID, a cookie with
// a Max-Age up to its absolute deadline, and the longer timeouts of the
// remember configuration. X-Session-Remember: false returns it to a
// browser-session cookie and the normal timeouts, under a new ID as well,
// and ends it if it has already outlived them. store.Decide carries both
// out; the handler plans the new ID (rules.rotates), issues the cookie,
// forwards X-Session-Meta-Remembered and tells the events app.

// RememberConfig sets the timeouts of remembered sessions: those the app
// made persistent with `X-Session-Remember: true` ("remember me").
type RememberConfig struct {
	// How long a remembered session may go unused before it ends. Must
	// not be shorter than idle_timeout. Default: 14 days (336h), or
	// idle_timeout if that is longer.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
	// How long a remembered session may last after its creation, however
	// much it is used; its cookie's Max-Age runs to this deadline. Must
	// not be shorter than absolute_timeout, nor than the remember
	// idle_timeout. Default: 30 days (720h), or absolute_timeout if that
	// is longer.
	AbsoluteTimeout caddy.Duration `json:"absolute_timeout,omitempty"`
}

// timeouts returns the remember timeouts for the normal ones t. A default
// is never shorter than the normal timeout, so that a config with long
// timeouts, written before remember-me existed, still loads.
func (c *RememberConfig) timeouts(t session.Timeouts) (idle, absolute time.Duration) {
	idle = max(session.DefaultRememberIdleTimeout, t.Idle)
	absolute = max(session.DefaultRememberAbsoluteTimeout, t.Absolute)
	if c != nil {
		idle = durationOr(c.IdleTimeout, idle)
		absolute = durationOr(c.AbsoluteTimeout, absolute)
	}
	return idle, absolute
}

// validateRemember refuses remember timeouts that would end a remembered
// session sooner than one that is not.
func (h *Handler) validateRemember() error {
	t := h.timeouts
	switch {
	case t.RememberIdle < t.Idle:
		return fmt.Errorf("remember: idle_timeout (%s) is shorter than idle_timeout (%s): a remembered session must not end sooner than another", t.RememberIdle, t.Idle)
	case t.RememberAbsolute < t.Absolute:
		return fmt.Errorf("remember: absolute_timeout (%s) is shorter than absolute_timeout (%s): a remembered session must not end sooner than another", t.RememberAbsolute, t.Absolute)
	case t.RememberAbsolute < t.RememberIdle:
		return fmt.Errorf("remember: absolute_timeout (%s) is shorter than its idle_timeout (%s)", t.RememberAbsolute, t.RememberIdle)
	}
	return nil
}

// unmarshalRemember reads the remember block:
//
//	remember {
//		idle_timeout <duration>
//		absolute_timeout <duration>
//	}
func (h *Handler) unmarshalRemember(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Remember == nil {
		h.Remember = new(RememberConfig)
	}
	return eachSubdirective(d, "remember", h.Remember, rememberSubdirectives)
}

// rememberSubdirectives parse each subdirective of the remember block,
// with the dispenser on its name.
var rememberSubdirectives = map[string]func(c *RememberConfig, d *caddyfile.Dispenser) error{
	"idle_timeout":     func(c *RememberConfig, d *caddyfile.Dispenser) error { return parseDuration(d, &c.IdleTimeout) },
	"absolute_timeout": func(c *RememberConfig, d *caddyfile.Dispenser) error { return parseDuration(d, &c.AbsoluteTimeout) },
}

// metaRemembered is the reserved key under which a remembered session is
// forwarded: X-Session-Meta-Remembered, with the handler's prefix. No
// session key can take it (meta- is reserved), and Scrub removes every
// spelling of it that a client sends.
const metaRemembered = "meta-remembered"

// rememberedValue is the value of X-Session-Meta-Remembered, one slice
// shared by every request: a header's values are only read downstream.
var rememberedValue = []string{"true"}

// forwardRemembered tells the upstream that the session is remembered,
// with X-Session-Meta-Remembered: true; nothing for any other session.
// Call it after Scrub.
func (h *Handler) forwardRemembered(hdr http.Header, rec *session.Record) {
	if rec.Remembered {
		hdr[h.protocol.HeaderName(metaRemembered)] = rememberedValue
	}
}

// issueCookie is the Set-Cookie field value that hands id, the new ID of
// rec, to the browser at now, when the response goes: a browser-session
// cookie, or for a remembered session a persistent one that lasts to its
// absolute deadline.
func (h *Handler) issueCookie(id string, tls bool, rec *session.Record, now time.Time) string {
	if rec.Remembered {
		return h.cookie.IssuePersistentHeader(id, tls, h.timeouts.AbsoluteEnd(rec).Sub(now))
	}
	return h.cookie.IssueHeader(id, tls)
}

// causeExpired is the cause of session.destroyed for a session that
// X-Session-Remember: false returned to timeouts it had outlived: the one
// expiry a request sees.
const causeExpired = "expired"

// emitRemembered tells of a session whose persistence the response
// changed, under its new ID: session.remembered, after session.created or
// session.renewed. A session that starts remembered is told of too (a
// login with the box ticked); a Remember that changed nothing is not, nor
// one that found the session already as asked, another request having
// changed it first (the store says which: Result.Remembered).
func (s *requestState) emitRemembered(newHash session.Hash, res *store.Result) {
	if !res.Remembered {
		return
	}
	h := s.handler
	rec := res.Record
	if ce := h.logger.Check(zap.DebugLevel, "session remembered"); ce != nil {
		ce.Write(zap.String("session", newHash.Short()), zap.Bool("remembered", rec.Remembered))
	}
	h.emit(eventRemembered, sessionEvent{hash: newHash, realm: h.realm, record: rec, remembered: rec.Remembered})
}

// publishExpired tells of the session under hash (the request's, or the
// successor it reached through a renewal meanwhile) that
// X-Session-Remember: false ended, having outlived the normal timeouts:
// the browser's cookie is expired, and the end is counted and told as an
// expiry.
func (s *requestState) publishExpired(hdr http.Header, hash session.Hash) {
	h := s.handler
	setCookie(s.request, hdr, h.cookie.ExpireHeader(s.request.TLS != nil))
	sessionMetrics.expired.WithLabelValues(h.backend).Inc()
	h.logger.Info("session ended: X-Session-Remember: false returned it to timeouts it had outlived",
		zap.String("session", hash.Short()))
	h.emit(eventDestroyed, sessionEvent{hash: hash, realm: h.realm, record: s.record, cause: causeExpired, sessions: 1})
}

// settleRemember makes p a rotation when the response asks, with
// X-Session-Remember, for a persistence that the session the request
// loaded already had, but that the session has not any more: another
// request of it changed it while this one was in flight (under a new ID:
// a change of persistence always moves the session). planCommit decided
// on the record as loaded, and found nothing to do; yet the rotation
// kept the user, and a request in flight across such a rotation has its
// commands carried into the successor, as the last word on it. Without
// this, an X-Session-Remember: false that answered after another tab's
// X-Session-Remember: true was dropped, with its 200, and left the
// persistent ID that tab had just written to disk opening a remembered
// session.
//
// It reads the session again, past any cache, only for a response that
// says X-Session-Remember and nothing the store would be asked to write
// (at most a touch, which carries no patch): rare. A response with
// changes as well sends the store its patch, and Decide judges the
// persistence on the session as it then stands (store.ErrNeedsRotation).
// The read comes after the request loaded the session, so that a change
// of persistence committed before it is seen; one committed after it is
// ordered after this response, whose "as it is" then held.
func (s *requestState) settleRemember(p *plan) error {
	if p.patch == nil || p.patch.Remember == session.RememberAsIs || s.record == nil || p.endAll {
		return nil
	}
	if p.step != stepNone && p.step != stepTouch {
		return nil // a rotation carries it already, a change the store judges, an end or a start has no session to keep
	}
	h := s.handler
	ctx := store.Fresh(s.commitContext())
	hash := s.hash
	for hop := 0; hop <= store.MaxHops; hop++ {
		rec, err := h.store.Load(ctx, hash, s.now, h.timeouts)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil // ended: the commit drops the commands, or has none to store
		case err != nil:
			h.logger.Error("reading the session again for X-Session-Remember",
				zap.String("session", s.hash.Short()), zap.Error(err))
			return fmt.Errorf("reading session: %w", err)
		case rec.Realm != "" && rec.Realm != h.realm:
			return nil
		case !rec.Forwarded():
			if p.patch.Remember.Switches(rec) {
				// A new ID, for the successor the update reaches
				// through the forward records (Decide): its persistence
				// changes there, unless a login made it another user's.
				p.step = stepRotate
			}
			return nil
		}
		hash = *rec.Successor
	}
	return nil // too many rotations to follow: as the update would, leave it
}
