package caddysession

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// StoreErrorConfig chooses what requests get while the store fails.
//
// Whatever the policy, a response that carries session commands is never
// delivered as if they were written: it becomes a 503. The policy decides
// what happens to requests that only read their session, and to the
// writes a request makes by itself (a touch, the take of flash values,
// the list of devices).
//
// On bolt, reads do not fail (the file is mapped), so the policy decides
// only what a failed touch does; on Redis it also decides what a request
// gets when its session cannot be read.
type StoreErrorConfig struct {
	// `503` (the default): a request whose session cannot be read, or
	// whose touch, flash values or list of devices cannot be stored or
	// read, gets 503 Service Unavailable.
	//
	// `anonymous`: a request whose session cannot be read is served as
	// anonymous (the app sees no session header); a touch, flash values
	// or a list of devices that fail are skipped, and the response is
	// delivered.
	//
	// `stale`: as `anonymous`, except that a request whose session cannot
	// be read is served the copy this Caddy read or wrote within `within`,
	// if it has one, and otherwise gets 503. Such a request neither
	// touches the session nor takes its flash values. A session this Caddy
	// saw end (a logout, a rotation, a revocation through it or its admin
	// API, a load that found it gone; the renewed session too when one of
	// these reached it through a forward record) is never served from the
	// copy.
	Policy string `json:"policy,omitempty"`

	// For `stale`: how long after this Caddy last read or wrote a session
	// it may serve it from its copy. It is also the longest that a
	// revocation made through another instance, which this one did not
	// see, can be ignored while the store is down. Required with `stale`.
	Within caddy.Duration `json:"within,omitempty"`
}

// storeErrorPolicy is a parsed StoreErrorConfig.Policy.
type storeErrorPolicy int

const (
	policyUnavailable storeErrorPolicy = iota
	policyAnonymous
	policyStale
)

var policyNames = []string{"503", "anonymous", "stale"}

func (p storeErrorPolicy) String() string { return policyNames[p] }

// The decisions a policy makes, as metrics and logs name them.
const (
	decisionUnavailable  = "unavailable"   // a 503 for a session that cannot be read
	decisionAnonymous    = "anonymous"     // served as anonymous
	decisionStale        = "stale"         // served from the copy
	decisionWriteRefused = "write_refused" // a 503 for commands that cannot be written
	decisionTouchSkipped = "touch_skipped" // delivered without its touch
	decisionFlashSkipped = "flash_skipped" // served without its flash values, which stay
	decisionNoDevices    = "devices_skipped"
)

// provisionStoreErrors reads on_store_error, after the store: stale keeps
// the copy of the store's sessions.
func (h *Handler) provisionStoreErrors() error {
	c := h.OnStoreError
	if c == nil {
		h.store = h.tellsStaleCopy(h.store)
		return nil
	}
	switch c.Policy {
	case "", "503":
		h.storeErrors = policyUnavailable
	case "anonymous":
		h.storeErrors = policyAnonymous
	case "stale":
		h.storeErrors = policyStale
	default:
		return fmt.Errorf("on_store_error %q: give 503, anonymous or stale <duration>", c.Policy)
	}
	if (h.storeErrors == policyStale) != (c.Within > 0) {
		return fmt.Errorf("on_store_error: a duration goes with stale, and only with it (as in on_store_error stale 5m)")
	}
	if h.storeErrors == policyStale {
		within := time.Duration(c.Within)
		h.stale = holdStaleCopy(h.storeName, within)
		h.store = &staleStore{Store: h.store, copy: h.stale, identity: h.identity, now: clock.Now}
	} else {
		h.store = h.tellsStaleCopy(h.store)
	}
	return nil
}

// loadFailed decides what a request whose session under hash could not be
// read gets: the session's copy (stale), nothing (served as anonymous),
// or the error (a 503).
func (s *requestState) loadFailed(hash session.Hash, err error) (*session.Record, error) {
	h := s.handler
	switch h.storeErrors {
	case policyAnonymous:
		s.degraded = true
		h.decided(decisionAnonymous, hash, err)
		return nil, nil
	case policyStale:
		if rec, ok := h.stale.get(hash, h.identity, h.timeouts, time.Duration(h.OnStoreError.Within), s.now); ok {
			s.degraded = true
			h.decided(decisionStale, hash, err)
			return rec, nil
		}
	}
	h.decided(decisionUnavailable, hash, err)
	return nil, err
}

// lenient reports whether a write the request makes by itself (a touch,
// a take of flash values, a read of the devices) may fail without failing
// the request, and counts and logs the decision if so.
func (h *Handler) lenient(decision string, hash session.Hash, err error) bool {
	if h.storeErrors == policyUnavailable {
		return false
	}
	h.decided(decision, hash, err)
	return true
}

// refuseDegraded is the commit of a request that was served while the
// store failed: commands cannot be trusted to a store that failed, nor
// applied to a copy, so they make the response a 503; a touch is skipped.
//
// A command is refused even where the session served has nothing for it
// to do: under anonymous the app saw no session, and under stale the copy
// may not be what the store holds. A logout the app answered for a
// session it was not shown, delivered as a 200, told the user they were
// logged out while the store kept the session for the cookie, open again
// once the store was back.
func (s *requestState) refuseDegraded(p plan, patch *session.Patch) error {
	if (p.step == stepNone || p.step == stepTouch) && !asksStore(patch) {
		return nil
	}
	h := s.handler
	h.decided(decisionWriteRefused, s.hash, nil)
	return fmt.Errorf("the session store failed when the session was read; refusing to apply the response's session commands")
}

// asksStore reports whether patch has a command for the store: anything
// but X-Session-Touch: false, which asks it to write less.
func asksStore(patch *session.Patch) bool {
	return patch != nil && (patch.Changes() || patch.Destroy || patch.DestroyAll || patch.Renew ||
		patch.Remember != session.RememberAsIs || patch.Revoke != "")
}

// decided counts and logs a decision of the policy.
func (h *Handler) decided(decision string, hash session.Hash, err error) {
	sessionMetrics.storeErrorDecisions.WithLabelValues(h.storeErrors.String(), decision).Inc()
	fields := []zap.Field{zap.String("policy", h.storeErrors.String()), zap.String("decision", decision)}
	if hash != (session.Hash{}) {
		fields = append(fields, zap.String("session", hash.Short()))
	}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	h.logger.Warn("session store failed; on_store_error decided", fields...)
}

// unmarshalOnStoreError reads on_store_error:
//
//	on_store_error 503|anonymous|stale <duration>
func (h *Handler) unmarshalOnStoreError(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	h.OnStoreError = &StoreErrorConfig{Policy: strings.ToLower(d.Val())}
	if h.OnStoreError.Policy == "stale" {
		if err := parseDuration(d, &h.OnStoreError.Within); err != nil {
			return err
		}
		return nil
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}
