package caddysession

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// requestState is the session of one request, from the load before the
// upstream runs to the commit of its commands.
type requestState struct {
	handler *Handler
	request *http.Request
	now     time.Time
	hash    session.Hash
	record  *session.Record // nil: anonymous
	// moved reports that the request presented an ID that a rotation has
	// given a successor: such a request may not start a session.
	moved bool
	// endedAll reports that destroyAll ended every session of the user,
	// this one among them, and has told of it.
	endedAll bool
	// degraded reports that the store failed when the session was read,
	// and on_store_error served the request anyway: as anonymous, or from
	// a copy. Its commands are refused and nothing is written for it.
	degraded bool
	// refused reports that this handler turned away the session another
	// handler loaded for the request (adopt): its own timeouts, binding or
	// on_store_error serve the request as anonymous. The placeholders,
	// which still show that session, must not (setPlaceholders).
	refused bool
	// turnedAway reports, of the handler that loaded the session, that a
	// handler inside it refused it for the request: the request is no use
	// of the session, and does not touch it (settleTouch). Touched, a
	// session past a stricter area's idle_timeout would be let in there
	// again by the very next request.
	turnedAway bool
	// leftSession reports that the response's own commands ended the
	// session or made it another user's, and untouched that they said
	// X-Session-Touch: false: what a stream of that response watches
	// (stream.go), and whether it is touched. A handler nested in this
	// one, which took the commands of the same session first, tells it
	// of them (responseWriter.tellOuter).
	leftSession, untouched bool
	// tokenShown reports that the request showed the session's CSRF
	// token to a check of csrf (guardCSRF): a later check of the same
	// session, by this handler reached again or by one that adopted
	// this state, finds the form that held it gone (an app read it).
	tokenShown bool
	// leaving reports that the response's own commands said to end the
	// session or to make it another user's, whether or not the store
	// took them (it drops those of a session that had ended already): a
	// logout page or a login, which is delivered even if its session
	// ended while the app worked on it (withheld.go).
	leaving bool
	// storeFailed reports that a write of the commit failed and
	// on_store_error let the response go all the same (a touch skipped):
	// the store is failing, and the answer is not held up to read the
	// session again (withheld.go).
	storeFailed bool
	// stood reports that a commit's write found the request's session
	// live and still its user's (or the successor a renewal of the same
	// user made of it): the store decided it on what it holds, so the
	// answer needs no read of the session (withheld.go), which could no
	// longer follow the forward record the response's own rotation left
	// if the request took longer than its life. It is the state's, and
	// a nested handler tells it outward (tellOuter): the handlers around
	// the one that took the commands commit the same answer after it,
	// and read the session again under the ID the rotation had just
	// left, found it gone, and withheld the answer with the cookie of
	// the new ID, logging the user out.
	stood bool
	// withdrawn: the session was taken off the request for the error
	// routes (withdraw, leaveToErrorRoutes), which must not find it
	// through a session matcher either: they match it no more.
	withdrawn bool
	// movedOn: the response's own commit left the session under another
	// ID than the one loaded (a renewal, a remember, a forward record
	// followed). A watch that starts later from the loaded ID follows
	// the forward record, which lasts two minutes from that commit: a
	// long body does not start one then (longBodyCut).
	movedOn bool
	// line is the request line as the handler got it, kept for no_touch's
	// matchers when they are configured and there is a session.
	line *requestLine
	// flash is what the request took of the session's flash values, nil
	// if nothing; shared with the copies other handlers make.
	flash *flashTake
	// fromID is what was derived from the session's raw ID when it
	// loaded; nil if nothing. (The bools are kept together, and the
	// secrets derived from the ID share one pointer, so that the state
	// stays within 144 bytes, its allocation's size class on the read
	// path: TestRequestStateSize.)
	fromID *fromID
	// id is the raw ID the session was loaded with, kept for the key of
	// a sealed successor that a write of a plain session meets (see
	// storeUpdate); never logged nor forwarded.
	id string
	// seenAtLoad is openTunnels.seen() before the store was read, by
	// whichever loaded the session: a matcher that Caddy runs before the
	// handler (the matcher of a `header` or `log_skip`, or one above the
	// handler in a `route` block) loads it for the handler, and a mark
	// the handler took when it ran would count an end committed while
	// that read was in flight as seen before the load, and deliver the
	// answer to the device it logged out (withheld.go).
	seenAtLoad seenMark
}

// derivedFor reports whether s holds what h derives from the session's
// ID when it loads it (fromID), or has no session: a state loaded
// through another handler that derived less cannot serve h, since the ID
// is not kept.
func (s *requestState) derivedFor(h *Handler) bool {
	f := s.fromID
	return s.record == nil ||
		(h.csrf == nil || h.csrf.token == nil || f != nil && f.csrfToken != "") &&
			(h.sealIndex == nil || f != nil && f.sealKey != nil)
}

// sharesLoad reports whether a session loaded through h may be adopted by
// o, which could not load it again: the handler that loaded it has taken
// the session cookie off the request. They must read the same cookie,
// realm and store chain.
func (h *Handler) sharesLoad(o *Handler) bool {
	return h.storeName == o.storeName && h.cookie.Name == o.cookie.Name && h.realm == o.realm &&
		h.fallbackName == o.fallbackName
}

// adopt is the state another handler loaded, s, as this handler's: this
// handler's own checks of a load run again on it, since they may be
// stricter than the loader's: a session its timeouts have ended, or that
// the request does not present from the client it is bound to, is not
// served here (anonymous, as load makes it); a read the store failed is
// answered by this handler's on_store_error.
func (h *Handler) adopt(s *requestState) (*requestState, error) {
	mine := *s
	mine.handler = h
	if s.degraded && h.storeErrors != s.handler.storeErrors {
		switch h.storeErrors {
		case policyUnavailable:
			return nil, errors.New("reading session: the store failed when another session handler of this request read it")
		case policyAnonymous:
			mine.refuse(s)
		}
	}
	if s.degraded && h.storeErrors == policyStale && mine.record != nil {
		// Served from the copy by the loader's duration and rules: this
		// handler's own may be shorter (an area of the site that bounds
		// how long a revocation it did not see may be ignored).
		if _, ok := h.stale.get(mine.hash, h.identity, h.timeouts, time.Duration(h.OnStoreError.Within), mine.now); !ok {
			h.decided(decisionUnavailable, mine.hash, nil)
			return nil, errors.New("reading session: the store failed and this handler's on_store_error stale has no copy of the session within its duration")
		}
	}
	if mine.record == nil {
		return &mine, nil
	}
	if h.timeouts.Expired(mine.record, mine.now) {
		mine.refuse(s)
	} else if binding := h.Bind.broken(mine.record, s.request); binding != "" {
		h.logUnbound(mine.hash, binding)
		mine.refuse(s)
	} else if err := h.Bind.unproven(mine.record, s.request); err != nil {
		return nil, err
	}
	return &mine, nil
}

// anonymous makes s a request without a session, as load leaves one that
// presented none it may serve. Flash values that the handler which loaded
// the session took for the request are withheld: this handler's scrub
// removes them, so the app never gets them, and the take must be undone
// whatever the response (settleFlash), or the next page of the session
// would never get them.
func (s *requestState) anonymous() {
	if s.flash != nil {
		s.flash.withheld = true
	}
	s.hash, s.record, s.fromID, s.flash, s.id = session.Hash{}, nil, nil, nil, ""
}

// refuse makes s anonymous (anonymous) because this handler does not
// serve the session that loader, another handler's state, loaded, and
// marks both, if there was a session to refuse: s refused, loader
// turnedAway.
func (s *requestState) refuse(loader *requestState) {
	if s.record != nil {
		s.refused, loader.turnedAway = true, true
	}
	s.anonymous()
}

// fromID is what a handler derives from the raw ID of a session when it
// loads it (requestState.load), so that the ID itself is kept nowhere
// beyond the request's own state (requestState.id, for a sealed successor
// met mid-request), and goes into no log, header or placeholder:
// the session's CSRF token (csrf.go), only by a handler that checks it
// or shares its load with one that does, and the key of its sealed values
// (seal.go), when it was sealed or seal_values is on for the handler or
// one that shares its load. sealed reports that the record was stored
// sealed: the key seals its writes only then, or with seal_values on.
type fromID struct {
	csrfToken string
	sealKey   *session.SealKey
	sealed    bool
}

// derivations says what a handler derives from the ID of each session it
// loads for the handlers that share its load, beyond what it needs
// itself: they take that load over rather than read the session again
// (the cookie is gone by then).
type derivations struct {
	csrfToken, sealKey bool
}

// setDerivations sets, once the realms are known, what each handler
// derives from the session's ID: for itself, and for every handler that
// may take its load over (the same store, cookie, realm and fallback).
// Without this, a nested handler with csrf's token or seal_values inside
// a site's plain handler found a load it could not use and a request
// without the cookie, and served the session's user as anonymous.
func setDerivations(handlers []*Handler) {
	for _, h := range handlers {
		var d derivations
		h.sharedLoad = false
		for _, o := range handlers {
			if o != h && !h.sharesLoad(o) {
				continue
			}
			h.sharedLoad = h.sharedLoad || o != h
			d.csrfToken = d.csrfToken || o.csrf != nil && o.csrf.token != nil
			d.sealKey = d.sealKey || o.sealIndex != nil
		}
		h.derives = d
		h.loadVar = loadVarOf(h)
	}
}

// loadVarOf is the request var of the loads h shares (sharesLoad): one
// slot per store, cookie, realm and fallback. With one slot for all, a
// matcher or handler of another cookie or realm that loaded in between
// took the place of the outer handler's load, and a nested handler that
// should have adopted it found neither the load nor the cookie (the outer
// handler had taken it off), served the user as anonymous, and replaced
// the user's cookie at its first write. A NUL byte keeps the vars out of
// reach of {http.vars.*} placeholders.
func loadVarOf(h *Handler) string {
	return strings.Join([]string{stateVar, h.storeName, h.cookie.Name, h.realm, h.fallbackName}, "\x00")
}

// stateVar is where the session of the last session handler that has run
// for a request is kept among the request's vars (before one has, the
// first a placed matcher loaded), for a CEL session() matcher, which has
// no handler to read through. The handlers and the placed matchers keep
// theirs apart, each under its handler's loadVar, so that they load it
// once between them. A matcher's load does not replace the handler's
// here: a matcher that reads another site's session (`cookie osid`) made
// a later session('role', 'admin') of this site judge the request by
// that site's session. A NUL byte keeps it out of reach of {http.vars.*}
// placeholders.
const stateVar = "\x00caddy-session"

// loadKey is the request var of h's loads: loadVar, or stateVar for a
// handler the app has not wired (unit tests).
func (h *Handler) loadKey() string {
	if h.loadVar == "" {
		return stateVar
	}
	return h.loadVar
}

// keep stores the request's session as h's load, and as the one a CEL
// session() reads if none is kept there yet: the handler that serves the
// request sets its own there (ServeHTTP).
func (h *Handler) keep(r *http.Request, s *requestState) {
	ctx := r.Context()
	if key := h.loadKey(); key != stateVar {
		caddyhttp.SetVar(ctx, key, s)
		if _, ok := caddyhttp.GetVar(ctx, stateVar).(*requestState); ok {
			return
		}
	}
	caddyhttp.SetVar(ctx, stateVar, s)
}

// requestState returns the request's session, loading it on first use.
func (h *Handler) requestState(r *http.Request) (*requestState, error) {
	if s, ok := caddyhttp.GetVar(r.Context(), h.loadKey()).(*requestState); ok {
		if s.handler == h {
			return s, nil
		}
		if s.handler.sharesLoad(h) && s.derivedFor(h) {
			// Loaded by a matcher or an outer handler of the same store
			// and realm (and with what this handler derives from the ID,
			// which is not kept).
			mine, err := h.adopt(s)
			if err != nil {
				return nil, err
			}
			h.keep(r, mine)
			return mine, nil
		}
	}
	s := &requestState{handler: h, request: r, now: clock.Now(), seenAtLoad: openTunnels.seen()}
	var room [session.MaxCandidates]string // the candidates, on the stack
	candidates := h.cookie.AppendCandidates(room[:0], r)
	if h.readsStashed() {
		candidates = h.appendStashed(candidates, r) // unmatched.go, foreigncookies.go
	}
	if err := s.load(candidates); err != nil {
		return nil, err
	}
	h.keep(r, s)
	return s, nil
}

// load adopts the first candidate ID that the store holds a live session
// of this realm for. An unknown ID (forged, expired, destroyed, of another
// realm) is never adopted: the request stays anonymous and gets a new ID
// when it first writes. An ID rotated away is not adopted either, and keeps
// the request from starting a session.
func (s *requestState) load(candidates []string) error {
	h := s.handler
	for _, id := range candidates {
		hash := session.HashID(id)
		rec, err := h.store.Load(s.request.Context(), hash, s.now, h.timeouts)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			h.logger.Error("reading session from store",
				zap.String("session", hash.Short()), zap.Error(err))
			if rec, err = s.loadFailed(hash, err); err != nil {
				return fmt.Errorf("reading session: %w", err)
			}
			if rec == nil {
				return nil // served as anonymous
			}
		}
		if rec.Realm != "" && rec.Realm != h.realm {
			continue // another site's session, or its rotation: not ours
		}
		if rec.Forwarded() {
			s.moved = true
			continue
		}
		var key *session.SealKey
		sealed := rec.Sealed
		if sealed || h.sealIndex != nil || h.derives.sealKey {
			if rec, key, err = s.unseal(id, hash, rec); err != nil {
				return err
			}
		}
		if binding := h.Bind.broken(rec, s.request); binding != "" {
			h.logUnbound(hash, binding)
			continue
		}
		if err := h.Bind.unproven(rec, s.request); err != nil {
			return err
		}
		s.hash, s.record, s.id = hash, rec, id
		var token string
		if h.csrf != nil && h.csrf.token != nil || h.derives.csrfToken {
			token = session.CSRFToken(id)
		}
		if token != "" || key != nil {
			s.fromID = &fromID{csrfToken: token, sealKey: key, sealed: sealed}
		}
		return nil
	}
	return nil
}

// commit applies the commands in the response headers hdr, which rw
// writes with this status, and sets the session cookie if the ID changed. A
// returned error means the store failed and the response must not be
// delivered as if it had succeeded.
func (s *requestState) commit(rw *responseWriter, hdr http.Header, status int) error {
	patch := s.takeCommands(rw, hdr, status)
	// Sticky: a commit of this session earlier in the request (the same
	// handler reached again, or one nested in it: tellOuter) may have
	// said so already, and this one only finds what it left.
	s.untouched = s.untouched || patch != nil && patch.NoTouch
	p, err := planCommit(s.record, s.moved, patch, s.now, s.handler.rules)
	if err != nil {
		s.handler.logRejected(s, err)
		return nil
	}
	s.leaving = s.leaving || s.saysLeave(patch)
	if p.dropped != "" {
		s.logDropped(p.dropped)
		return nil
	}
	if s.degraded {
		return s.refuseDegraded(p, patch)
	}
	var rv *revocation
	if patch != nil && patch.Revoke != "" {
		var refused bool
		if rv, refused, err = s.checkRevoke(patch.Revoke); err != nil || refused {
			return err
		}
	}
	if err := s.settleRemember(&p); err != nil {
		return err
	}
	if p.step == stepNone {
		return s.revoke(rv) // the common read path: nothing to store
	}
	if err := s.settleTouch(rw, &p); err != nil {
		return err
	}
	if p.step == stepNone {
		return s.revoke(rv) // a read that does not touch
	}
	return s.carryOut(rw, hdr, p, rv)
}

// carryOut applies the plan of a commit that stores something, publishes
// what the store took (the cookie of a new ID, the events), and makes the
// revocation the commands asked for.
func (s *requestState) carryOut(rw *responseWriter, hdr http.Header, p plan, rv *revocation) error {
	newID, res, err := s.apply(&p)
	switch {
	case err != nil && res != nil:
		// Stored, but not as durably as asked (store.ErrUnreplicated):
		// the 503 carries the cookie of the session's new ID, or the
		// device would be logged out; the revocation is not made.
		before := len(hdr["Set-Cookie"])
		s.publish(hdr, p, newID, res)
		return keepCookies(err, hdr["Set-Cookie"][before:])
	case err != nil:
		return err
	case res == nil && p.step != stepTouch:
		return nil // the changes were dropped or refused, the revocation with them
	}
	before := len(hdr["Set-Cookie"])
	if res != nil {
		s.publish(hdr, p, newID, res)
		s.capSessions(p, newID, res)
		s.leftSession = s.leaves(p, res)
		s.stood = s.stood || res.Record != nil && !s.leftSession
		s.movedOn = s.movedOn || res.Record != nil && res.Hash != s.hash
	}
	return keepCookies(s.revoke(rv), hdr["Set-Cookie"][before:])
}

// leaves reports whether the response's own commands, as the store took
// them in res, ended the request's session or made it another user's.
func (s *requestState) leaves(p plan, res *store.Result) bool {
	if s.record == nil {
		return false // it had none: no stream of it is watched
	}
	if s.endedAll || p.step.ends() || res.Record == nil {
		return true
	}
	was, _ := s.handler.rules.identityOf(s.record)
	now, _ := s.handler.rules.identityOf(res.Record)
	return was != now
}

// saysLeave reports whether patch says to end the loaded session or to
// make it another user's: a logout, a logout everywhere, or a change of
// the identity key (a login), as leaves judges what the store took.
func (s *requestState) saysLeave(patch *session.Patch) bool {
	if patch == nil || s.record == nil {
		return false
	}
	if patch.Destroy || patch.DestroyAll {
		return true
	}
	key := s.handler.identity
	was, had := s.handler.rules.identityOf(s.record)
	if v, ok := patch.Sets(key); ok {
		return !had || v != was
	}
	return had && patch.Deletes(key)
}

// commitContext is the context of the store's work in a commit: the
// request's, without its cancellation. By the time the commands are
// committed the app has answered: it has carried the request out, and its
// commands are its word on the session, whoever still listens. net/http
// cancels the request's context when the client goes away (it resets its
// HTTP/2 or HTTP/3 stream, or closes its HTTP/1.1 connection), and a
// store refuses a canceled context: a logout, a logout everywhere or a
// revocation that the app confirmed was not made, or made in part (Redis
// ends a user's sessions one by one), and a client could so keep its
// session from an end the app gave it. The store's own timeouts bound
// the work, as they do the put-back of flash values (settleFlash).
func (s *requestState) commitContext() context.Context {
	return context.WithoutCancel(s.request.Context())
}

// partialCommit is a commit that failed after the store took part of it:
// the cookies it issued for that part go on the 503 all the same. A
// renewal applied before a revocation failed has moved the session to a
// new ID, and the old one is a forward record that no request adopts:
// without the new cookie, the device would be logged out.
type partialCommit struct {
	err     error
	cookies []string // Set-Cookie lines of the session's cookies
}

func (p *partialCommit) Error() string { return p.err.Error() }
func (p *partialCommit) Unwrap() error { return p.err }

// keepCookies is err, a failure after the cookies were issued, as a
// partialCommit that keeps them; nil if err is.
func keepCookies(err error, cookies []string) error {
	if err == nil || len(cookies) == 0 {
		return err
	}
	return &partialCommit{err: err, cookies: slices.Clone(cookies)}
}

// notCarriedOut reports whether a response with this status says its
// request was not carried out: an error (5xx), or 425 Too Early, with
// which a server that follows RFC 8470 refuses a request it got in TLS
// early data (HTTP/3's 0-RTT, which Caddy accepts by default and marks
// with Early-Data: 1), since an attacker may have replayed it; the client
// sends it again once the handshake is done. No command on it applies,
// not even one that Caddy's header directive put there, and the flash
// values it took are kept for the retry.
func notCarriedOut(status int) bool {
	return status >= http.StatusInternalServerError || status == http.StatusTooEarly
}

// takeCommands removes the commands from the response, which rw writes
// as status, and returns the ones to apply: none on an error response, or on
// one that says the request was not carried out (notCarriedOut, of the
// upstream's status).
func (s *requestState) takeCommands(rw *responseWriter, hdr http.Header, status int) *session.Patch {
	h := s.handler
	patch, err := h.protocol.TakeCommands(hdr)
	if patch == nil && err == nil {
		return nil
	}
	if upstream := rw.upstreamStatus(status); notCarriedOut(upstream) {
		if ce := h.logger.Check(zap.DebugLevel, "ignoring session commands on an error response"); ce != nil {
			ce.Write(zap.Int("status", upstream))
		}
		return nil
	}
	if err != nil {
		h.logRejected(s, err)
		return nil
	}
	return patch
}

// apply carries the plan out in the store. It returns the new ID if the
// plan issued one, and where the session stands; a nil result with a nil
// error means there is nothing to publish. A change that planCommit, on
// the session as the request loaded it, found keeps the ID, but that the
// store finds changes a renew_on key or the persistence of the session as
// it now stands (store.ErrNeedsRotation: another request changed them
// meanwhile), becomes a rotation: p.step says so afterwards.
func (s *requestState) apply(p *plan) (string, *store.Result, error) {
	h := s.handler
	if p.step == stepTouch && !h.touches.claim(s.hash, s.now, h.timeouts.TouchInterval) {
		// Requests of one session often come in parallel (a page and its
		// assets), and all of them loaded the record before any touch
		// was stored: one of them touches, the others need not.
		return "", nil, nil
	}
	u := s.update(*p)
	if p.endAll {
		ended, dropped, err := s.destroyAll()
		if err != nil || dropped {
			return "", nil, err
		}
		if ended {
			// Every session of the user is gone, this one with it: keys
			// and flash values set beside the command start a session of
			// their own.
			u.HasHash, u.Patch = false, p.patch.Starting()
		}
	}
	var newID string
	if p.step.newID() {
		newID, u.NewHash = newSessionID()
		sealNewID(&u, newID)
	}
	if u.HasHash || u.NewHash != nil {
		res, err := s.storeUpdate(s.commitContext(), u)
		if errors.Is(err, store.ErrNeedsRotation) && u.NewHash == nil {
			// Another request rotated the session while this one was in
			// flight, and its successor differs from what this request
			// loaded in a renew_on key or its persistence, which this
			// response changes back: a privilege granted again, or taken
			// away, under the ID issued for the other value would be a
			// rotation silently skipped. The response is the last word,
			// under a new ID of its own.
			p.step = stepRotate
			newID, u.NewHash = newSessionID()
			sealNewID(&u, newID)
			res, err = s.storeUpdate(s.commitContext(), u)
		}
		if errors.Is(err, store.ErrUnreplicated) {
			// Made, but a failover could undo it: the client gets a 503,
			// with the cookie of where the session now is (commit).
			h.logger.Error("writing session to store",
				zap.String("session", s.hash.Short()), zap.Error(err))
			return newID, &res, fmt.Errorf("writing session: %w", err)
		}
		if err != nil {
			return "", nil, s.updateFailed(*p, err)
		}
		return newID, &res, nil
	}
	return "", &store.Result{}, nil // ended with the rest of the user's sessions
}

// update is the store update of the plan, before a new ID is chosen.
func (s *requestState) update(p plan) store.Update {
	h := s.handler
	u := store.Update{
		Patch:    p.patch,
		Identity: h.identity,
		RenewOn:  h.RenewOn,
		Realm:    h.realm,
		NoTouch:  p.noTouch,
		Now:      s.now,
		Commit:   clock.Now(),
		Timeouts: h.timeouts,
		Limits:   h.limits,
	}
	if h.RecordUserAgent {
		u.UserAgent = s.request.UserAgent() // kept only by a session the update starts
	}
	if h.Bind != nil && h.Bind.IP != nil {
		u.ClientNet = h.Bind.IP.clientNet(s.request) // as the User-Agent
	}
	if s.record != nil {
		u.Hash, u.HasHash = s.hash, true
		u.Seen, _ = h.rules.identityOf(s.record)
	}
	u.Seal = s.sealing()
	if p.step == stepTouch {
		u.Patch = nil
	}
	return u
}

// updateFailed turns a store's answer into the commit's outcome: a session
// that ended or moved on drops the commands; a broken rule refuses them; a
// failure is the client's 503.
func (s *requestState) updateFailed(p plan, err error) error {
	h := s.handler
	var ruleErr *session.RuleError
	switch {
	case errors.Is(err, store.ErrNotFound) && p.step == stepTouch:
		return nil // a touch of a session that has just ended
	case errors.Is(err, store.ErrNotFound):
		s.logDropped(droppedEnded)
		return nil
	case errors.Is(err, store.ErrStale):
		s.logDropped(droppedIdentityChange)
		return nil
	case errors.As(err, &ruleErr):
		h.logRejected(s, err)
		return nil
	}
	if p.step == stepTouch {
		h.touches.release(s.hash) // let the next request try again
	}
	h.logger.Error("writing session to store",
		zap.String("session", s.hash.Short()), zap.Error(err))
	if p.step == stepTouch && h.lenient(decisionTouchSkipped, s.hash, err) {
		s.storeFailed = true
		return nil
	}
	return fmt.Errorf("writing session: %w", err)
}

// publish tells the client and the rest of Caddy what the commit did: the
// cookie, the metrics, the log and the placeholders.
func (s *requestState) publish(hdr http.Header, p plan, newID string, res *store.Result) {
	h := s.handler
	tls := s.request.TLS != nil
	switch {
	case res.Record != nil && newID != "":
		// The browser counts a Max-Age from the response, not from when
		// the request began: a slow request would hand out a cookie that
		// outlives its session by as long as it took.
		setCookie(s.request, hdr, h.issueCookie(newID, tls, res.Record, clock.Now()))
		renewal := p.step == stepRotate
		if renewal {
			sessionMetrics.renewed.WithLabelValues(h.backend).Inc()
		} else {
			sessionMetrics.created.WithLabelValues(h.backend).Inc()
		}
		if ce := h.logger.Check(zap.DebugLevel, "session issued"); ce != nil {
			ce.Write(zap.String("session", res.Hash.Short()), zap.Bool("renewal", renewal))
		}
		if renewal {
			h.emit(eventRenewed, sessionEvent{hash: res.Hash, realm: h.realm, record: res.Record, previous: s.acted(res), before: s.record})
		} else {
			if p.step == stepRestart {
				s.emitEnded(p, s.acted(res))
			}
			h.emit(eventCreated, sessionEvent{hash: res.Hash, realm: h.realm, record: res.Record})
		}
		s.emitRemembered(res.Hash, res)
	case res.Expired:
		s.publishExpired(hdr, s.acted(res))
	case res.Record == nil && p.step.ends():
		setCookie(s.request, hdr, h.cookie.ExpireHeader(tls))
		if !p.endAll { // destroyAll has counted it
			sessionMetrics.destroyed.WithLabelValues(h.backend, "logout").Inc()
		}
		if ce := h.logger.Check(zap.DebugLevel, "session destroyed"); ce != nil {
			ce.Write(zap.String("session", s.acted(res).Short()))
		}
		s.emitEnded(p, s.acted(res))
	}
	s.updatePlaceholders(res.Hash, res.Record)
}

// emitEnded tells of the end of the session under hash, the one the
// request presented or, when the request followed a rotation, its
// successor, unless destroyAll has told of it with the rest of the user's
// sessions. A session with no identity ends alone, also by
// X-Session-Destroy-All.
func (s *requestState) emitEnded(p plan, hash session.Hash) {
	if s.endedAll {
		return
	}
	cause := causeLogout
	if p.endAll {
		cause = causeLogoutAll
	}
	s.handler.emit(eventDestroyed, sessionEvent{hash: hash, realm: s.handler.realm, record: s.record, cause: cause, sessions: 1})
}

// acted is the session that the update of res read and acted on: the one
// the request presented or, when renewals in other requests had moved it
// on while this one was in flight, the successor the update reached
// through their forward records. Events about what the update did name
// it: an app that keeps state per session was told of the renewal, and
// knows the session by that hash, not by the one the request presented.
func (s *requestState) acted(res *store.Result) session.Hash {
	if res.Acted != (session.Hash{}) {
		return res.Acted
	}
	return s.hash
}

// logDropped logs and counts commands dropped because the request's
// session ended or moved on while it was in flight.
func (s *requestState) logDropped(reason string) {
	sessionMetrics.dropped.WithLabelValues(reason).Inc()
	fields := []zap.Field{zap.String("reason", reason), zap.String("uri", s.request.RequestURI)}
	if s.record != nil {
		fields = append(fields, zap.String("session", s.hash.Short()))
	}
	s.handler.logger.Info("dropped session commands: the session ended or moved on while the request was in flight", fields...)
}

func newSessionID() (string, *session.Hash) {
	id := session.NewID()
	hash := session.HashID(id)
	return id, &hash
}

// destroyAll ends every session of the current session's user in the
// handler's realm, this one included, and reports whether it did; a
// session with no identity key only ends itself, by the plan's step.
//
// It acts only for a session that is still the user's: one that ended
// while the request was in flight (a logout, a revocation), or that a
// login made another user's, has its commands dropped, as the store drops
// those of any ended session (dropped). Otherwise a session revoked for a
// password reset would, by a request it had begun before, end the
// sessions the user logged in with afterwards, and start one of its own
// with the keys set beside the command.
func (s *requestState) destroyAll() (ended, dropped bool, err error) {
	h := s.handler
	user, ok := h.rules.identityOf(s.record)
	if !ok {
		sessionMetrics.destroyed.WithLabelValues(h.backend, "logout_all").Inc()
		return false, false, nil
	}
	// A renewal in another tab may have moved the session to a new ID
	// since the request loaded it: it is ended, and told of, under that
	// one.
	own, why, err := s.ownSession(user, nil)
	if err != nil {
		return false, false, err
	}
	if why != "" {
		s.logDropped(why)
		return false, true, nil
	}
	ctx := s.commitContext()
	n, err := h.store.DeleteByIdentity(ctx, h.realm, h.identity, user)
	if err == nil {
		// This session is among them, unless its index entry was made
		// under another identity key (the config changed): end it anyway.
		if err = h.store.Delete(ctx, own); errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		h.logger.Error("ending all sessions of a user",
			zap.String("session", own.Short()), zap.Error(err))
		return false, false, fmt.Errorf("ending all sessions of a user: %w", err)
	}
	sessionMetrics.destroyed.WithLabelValues(h.backend, "logout_all").Add(float64(n))
	h.logger.Info("ended every session of a user",
		zap.String("session", own.Short()), zap.Int("sessions", n))
	s.endedAll = true
	h.emit(eventDestroyed, sessionEvent{hash: own, realm: h.realm, record: s.record, cause: causeLogoutAll, sessions: n})
	return true, false, nil
}

func (h *Handler) logRejected(s *requestState, err error) {
	var ruleErr *session.RuleError
	if errors.As(err, &ruleErr) {
		sessionMetrics.rejected.WithLabelValues(ruleErr.Reason).Inc()
	}
	fields := []zap.Field{zap.String("uri", s.request.RequestURI), zap.Error(err)}
	if s.record != nil {
		fields = append(fields, zap.String("session", s.hash.Short()))
	}
	h.logger.Warn("rejected session commands from upstream; nothing changed", fields...)
}

// maxTouches bounds the sessions a touchFilter remembers per interval.
// Past it, touches are not deduplicated, which costs writes, never
// correctness.
const maxTouches = 1 << 16

// touchFilter remembers the sessions a handler has touched in the last
// touch interval, so that concurrent requests of one session store one
// touch between them rather than one each. It keeps two generations of
// claims, the current interval's and the previous one's, so that it holds
// only recent ones and needs no sweep.
type touchFilter struct {
	mu       sync.Mutex
	cur, old map[session.Hash]time.Time
	rotated  time.Time
}

// claim reports whether the request at now should store the touch of the
// session with hash: true unless a request of this handler claimed it
// less than interval ago.
func (f *touchFilter) claim(hash session.Hash, now time.Time, interval time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil || now.Sub(f.rotated) >= interval {
		f.old, f.cur, f.rotated = f.cur, make(map[session.Hash]time.Time), now
	}
	for _, m := range []map[session.Hash]time.Time{f.cur, f.old} {
		if at, ok := m[hash]; ok && now.Sub(at) < interval {
			return false
		}
	}
	if len(f.cur) < maxTouches {
		f.cur[hash] = now
	}
	return true
}

// release forgets the claim of a touch that failed.
func (f *touchFilter) release(hash session.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cur, hash)
	delete(f.old, hash)
}
