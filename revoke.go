package caddysession

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// X-Session-Revoke: <short hash> ends another session of the current
// session's user in the realm, one that X-Session-Meta-Devices listed
// (devices.go): "log out that device".
//
// The command is checked before anything of its response is applied. A
// request whose own session ended while it was in flight has it dropped
// with the rest of its commands, as any command of an ended session is
// (a renewal meanwhile is no end: the session lives on under its new ID).
// A short hash that names none of the user's live sessions (another user's,
// another realm's, an ended one, a made-up one), a request with no session
// or whose session has no identity, and the current session itself (which
// X-Session-Destroy ends; by its successor's hash too, if a renewal in
// another request moved it on meanwhile) refuse the whole response, as a
// broken rule does: nothing is applied, the refusal is logged and counted
// in the rejected metric (unknown_session, or conflict for the current
// session), and the response is still delivered. A refusal says the same whether
// the hash is another user's or no one's.
//
// The session is ended after the rest of the response is committed, so
// that a change the store refuses (a limit) refuses the revocation with
// it. A store that fails in between has applied the rest and not the
// revocation: the client gets its 503, with the cookies the rest issued
// (partialCommit).

// reasonUnknownSession is the rejected metric's reason for a revocation
// of a session that is not one of the user's.
const reasonUnknownSession = "unknown_session"

// revocation is a session that X-Session-Revoke ends, once checked.
type revocation struct {
	hash   session.Hash
	record *session.Record
}

// checkRevoke finds the session that the revoke command names by its
// short hash among the live sessions of the current session's identity in
// the realm. A refusal is logged and counted here and reported as
// refused; an error is the store's failure, the client's 503.
func (s *requestState) checkRevoke(short string) (rv *revocation, refused bool, err error) {
	h := s.handler
	refuse := func(reason, format string, args ...any) (*revocation, bool, error) {
		h.logRejected(s, &session.RuleError{Reason: reason, Detail: fmt.Sprintf(format, args...)})
		return nil, true, nil
	}
	if s.record == nil {
		return refuse(reasonUnknownSession, "session revoke of %s on a request with no session: only a session of a user may end another of theirs", short)
	}
	user, ok := h.rules.identityOf(s.record)
	if !ok {
		return refuse(reasonUnknownSession, "session revoke of %s from a session with no %q: only a session of a user may end another of theirs", short, h.identity)
	}
	if s.hash.Short() == short {
		return refuse("conflict", "session revoke of %s names the request's own session; end it with the destroy command", short)
	}
	entries, err := h.store.ListByIdentity(s.commitContext(), h.realm, h.identity, user, s.now)
	if err != nil {
		h.logger.Error("listing the sessions of a user for a revoke",
			zap.String("session", s.hash.Short()), zap.Error(err))
		return nil, false, fmt.Errorf("listing the sessions of a user: %w", err)
	}
	own, dropped, err := s.stillLive(entries, user)
	if err != nil {
		return nil, false, err
	}
	if dropped != "" {
		// The request's own session ended while it was in flight (that
		// device was revoked, or logged out), or is another user's now
		// (a login): its commands are dropped, this one with them, as
		// those of any such session are, and counted by why.
		s.logDropped(dropped)
		return nil, true, nil
	}
	if own.Short() == short {
		// Renewed by another request of the device while this one was
		// in flight: the successor is the request's own session now,
		// which the commit acts on, and not the user's other device.
		return refuse("conflict", "session revoke of %s names the request's own session, renewed while the request was in flight; end it with the destroy command", short)
	}
	for _, e := range entries {
		if e.Hash.Short() == short && e.Hash != own && !h.timeouts.Expired(e.Record, s.now) {
			return &revocation{hash: e.Hash, record: e.Record}, false, nil
		}
	}
	return refuse(reasonUnknownSession, "session revoke of %s names no live session of this session's user in this realm", short)
}

// revoke ends the session of a checked revocation, if any: on the read
// path, none, and no call beyond this inlined check.
func (s *requestState) revoke(rv *revocation) error {
	if rv == nil {
		return nil
	}
	return s.endRevoked(rv)
}

// endRevoked ends the session of a checked revocation, or its successor if
// it has been given a new ID since it was checked. One that has ended
// meanwhile is gone as asked.
func (s *requestState) endRevoked(rv *revocation) error {
	h := s.handler
	user, _ := h.rules.identityOf(s.record)
	ended, rec, err := s.deleteOfUser(rv.hash, user, false)
	if errors.Is(err, store.ErrNotFound) {
		if ce := h.logger.Check(zap.DebugLevel, "the session to revoke had already ended"); ce != nil {
			ce.Write(zap.String("session", s.hash.Short()), zap.String("revoked", rv.hash.Short()))
		}
		return nil
	}
	if err != nil {
		h.logger.Error("revoking a session of the user",
			zap.String("session", s.hash.Short()), zap.String("revoked", rv.hash.Short()), zap.Error(err))
		return fmt.Errorf("revoking a session: %w", err)
	}
	if rec == nil {
		rec = rv.record
	}
	sessionMetrics.destroyed.WithLabelValues(h.backend, causeRevoked).Inc()
	h.logger.Info("revoked a session of the user",
		zap.String("session", s.hash.Short()), zap.String("revoked", ended.Short()))
	h.emit(eventDestroyed, sessionEvent{hash: ended, realm: h.realm, record: rec, cause: causeRevoked, sessions: 1})
	return nil
}

// deleteOfUser ends the session under hash, a live session of user that
// the request listed, or, if it has been given a new ID since (a renewal
// on its device left a forward record under hash), its successor, as long
// as that is still a session of user in the realm: the listing named a
// device, and a rotation does not take the device out of reach. It
// returns store.ErrNotFound when neither is there any more, and otherwise
// the one it ended, as deleteFollowing does. With unseen set (the cap's
// evictions), a successor seen since the request began is not ended
// either: it is in use, as a session the listing showed so would be.
func (s *requestState) deleteOfUser(hash session.Hash, user string, unseen bool) (session.Hash, *session.Record, error) {
	h := s.handler
	return deleteFollowing(s.commitContext(), h.store, h.timeouts, hash, s.now, func(rec *session.Record) bool {
		if rec.Realm != "" && rec.Realm != h.realm {
			return false
		}
		if !h.holdsIdentity(rec, user) {
			return false // another user's now: not this user's to end
		}
		return !unseen || rec.LastSeen.Before(s.now)
	})
}

// deleteFollowing ends the session under hash in st or, if it has been
// given a new ID since (a forward record is under hash), its successor, a
// few hops at most, as long as it is live by the timeouts t and follow
// accepts it. It returns store.ErrNotFound when none of them is there any
// more, or the successor is not one to end. Otherwise it returns the
// session it ended, which events must name (an app told of the renewal
// knows the session by its new hash), with, when that is a successor, its
// record as last read (nil for the one under hash, which the caller read
// if it needed it).
func deleteFollowing(ctx context.Context, st store.Store, t session.Timeouts, hash session.Hash, now time.Time, follow func(*session.Record) bool) (ended session.Hash, rec *session.Record, err error) {
	// The forward record and the successor are read past any cache: a
	// cached copy from before the renewal would hide them.
	ctx = store.Fresh(ctx)
	for hop := 0; ; hop++ {
		err := st.Delete(ctx, hash)
		if !errors.Is(err, store.ErrNotFound) || hop == store.MaxHops {
			return hash, rec, err
		}
		fwd, lerr := st.Load(ctx, hash, now, t)
		switch {
		case errors.Is(lerr, store.ErrNotFound):
			return hash, nil, err
		case lerr != nil:
			return hash, nil, lerr
		case !fwd.Forwarded():
			return hash, nil, err
		}
		next := *fwd.Successor
		rec, lerr = st.Load(ctx, next, now, t)
		switch {
		case errors.Is(lerr, store.ErrNotFound):
			return hash, nil, err
		case lerr != nil:
			return hash, nil, lerr
		case !rec.Forwarded() && !follow(rec):
			return hash, nil, err
		}
		hash = next
	}
}

// stillLive finds whether the request's own session, or the session it
// became through renewals since the request loaded it, is still a live
// session of user: among entries, the sessions of user just listed, or
// read from the store (a listing is cut at store.MaxListByIdentity). It
// returns the session the request acts as (the one it loaded, or its
// successor), which the revocation must not name, and, when the request
// may no longer act as user's session, why (dropped, as ownSession says
// it), which the dropped metric counts.
func (s *requestState) stillLive(entries []store.Entry, user string) (own session.Hash, dropped string, err error) {
	h := s.handler
	listed := func(hash session.Hash) bool {
		for _, e := range entries {
			if e.Hash == hash {
				return !h.timeouts.Expired(e.Record, s.now) && !s.outlived(e.Record)
			}
		}
		return false
	}
	return s.ownSession(user, listed)
}

// ownSession finds the session the request's own is now: the one it
// loaded, or the successor that renewals since have moved it to (forward
// records lead there), as long as that is a live session of user in the
// realm. Otherwise dropped says why the request may no longer act as
// user's session, as logDropped takes it: it ended, or it is another
// user's now (a login). The hash names the session that acting as the
// request's own acts on, and the one events must name: an app told of the
// renewal knows it by that hash, not by the one the request presented.
// known, if not nil, reports a hash known to be live without reading it
// (a listing just made).
func (s *requestState) ownSession(user string, known func(session.Hash) bool) (hash session.Hash, dropped string, err error) {
	h := s.handler
	hash = s.hash
	// The key of the session under hash, for a handler without
	// seal_values that meets sessions sealed by one with it: a forward
	// record carries its successor's key, sealed under its own.
	var key *session.SealKey
	for hop := 0; ; hop++ {
		if known != nil && known(hash) {
			return hash, "", nil
		}
		if hop > store.MaxHops {
			return hash, droppedEnded, nil
		}
		// Past any cache: a cached copy of a session that ended
		// elsewhere would still look live.
		rec, err := h.store.Load(store.Fresh(s.commitContext()), hash, s.now, h.timeouts)
		switch {
		case errors.Is(err, store.ErrNotFound), err == nil && rec.Realm != "" && rec.Realm != h.realm:
			return hash, droppedEnded, nil
		case err != nil:
			h.logger.Error("reading the session of the request again",
				zap.String("session", s.hash.Short()), zap.Error(err))
			return hash, "", fmt.Errorf("reading session: %w", err)
		case !rec.Forwarded() && s.outlived(rec):
			return hash, droppedEnded, nil
		case !rec.Forwarded() && !s.holdsOwn(hash, rec, user, key):
			// Live, but not known (a listing cut at MaxListByIdentity)
			// and not the user's any more.
			return hash, droppedIdentityChange, nil
		case !rec.Forwarded():
			return hash, "", nil
		}
		key = s.successorKey(hash, rec, key)
		hash = *rec.Successor
	}
}

// successorKey is the key of the successor of fwd, the forward record
// under hash whose own key is key (nil: the request's own ID gives it, if
// hash is the request's session), for a handler without seal_values that
// must read a successor sealed by one with it (holdsOwn); nil if there is
// none or it does not open.
func (s *requestState) successorKey(hash session.Hash, fwd *session.Record, key *session.SealKey) *session.SealKey {
	if s.handler.sealIndex != nil || fwd.SuccessorKey() == "" {
		return nil
	}
	if key == nil && hash == s.hash {
		key = s.ownKey()
	}
	if key == nil {
		return nil
	}
	next, err := key.OpenSuccessor(hash, fwd)
	if err != nil {
		return nil
	}
	return next
}

// ownKey is the seal key of the request's own session: the one derived
// when it loaded, or, if none was, the one its ID gives.
func (s *requestState) ownKey() *session.SealKey {
	if s.fromID != nil && s.fromID.sealKey != nil {
		return s.fromID.sealKey
	}
	if s.id == "" {
		return nil
	}
	return session.DeriveSealKey(s.id)
}

// outlived reports whether the request's own session, rec, has reached
// its absolute deadline since the request began. The store read it live
// by the request's start (a request counts as a use when it began, which
// holds off the idle deadline), but none outlives the absolute one: the
// store drops the commands of a request that answers after it (Decide,
// by Update.Commit), and a logout everywhere or a revocation beside them,
// which act outside the store's update, must be dropped with them, or an
// expired session would end the user's live ones, and its keys start a
// session of their own.
func (s *requestState) outlived(rec *session.Record) bool {
	commit := clock.Now()
	return commit.After(s.now) && !commit.Before(s.handler.timeouts.AbsoluteEnd(rec))
}

// holdsOwn reports whether rec, the record under hash that the request's
// session now is, is still user's. A record sealed while this handler
// has sealing off (the request's own, sealed before sealing was turned
// off, or a successor that a handler with seal_values wrote while the
// request was in flight) has no index tag the handler can read: it is
// opened with the key the request's ID gives, or key, the one the
// forward records led to (successorKey). Otherwise it is read as
// holdsIdentity reads it.
func (s *requestState) holdsOwn(hash session.Hash, rec *session.Record, user string, key *session.SealKey) bool {
	h := s.handler
	if rec.Sealed && h.sealIndex == nil {
		if hash == s.hash {
			key = s.ownKey()
		}
		if key == nil {
			return false
		}
		plain := rec.Clone()
		if key.Open(hash, plain) != nil {
			return false
		}
		rec = plain
	}
	return h.holdsIdentity(rec, user)
}
