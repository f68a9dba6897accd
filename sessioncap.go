package caddysession

import (
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// max_sessions_per_identity: when a session takes an identity (a login: a
// session created with the identity key, or a change of its value, which
// rotates the ID), the user's least recently seen other sessions in the
// realm are ended until the cap is met, the new session among those that
// remain.
//
// The cap is enforced after the login is committed, by listing the user's
// sessions (store.ListByIdentity) and deleting the excess one by one, not
// in the login's transaction. A login never ends a session seen since it
// began (see evictable), so two logins at once never end each other's
// sessions; the later one ends the earlier if the cap says so, unless it
// listed before the earlier one committed: then the user has a session
// over the cap until the next login, which ends the excess. A session
// that has ended meanwhile is skipped; one that got a new ID meanwhile is
// ended under it, unless it was seen since the login began
// (deleteOfUser). A store failure while enforcing the cap does not
// undo the login, which the client has been told of: it is logged at
// error level and counted in the store errors metric, and the next login
// enforces the cap again.

// capSessions enforces the cap after a commit that issued newID for the
// session res.
func (s *requestState) capSessions(p plan, newID string, res *store.Result) {
	h := s.handler
	if h.MaxSessionsPerIdentity == 0 || res.Record == nil || newID == "" {
		return
	}
	user, ok := h.rules.identityOf(res.Record)
	if !ok {
		return
	}
	if p.step == stepRotate {
		if was, had := h.rules.identityOf(s.record); had && was == user {
			return // a renewal, not a login
		}
	}
	ctx := s.commitContext()
	entries, err := h.store.ListByIdentity(ctx, h.realm, h.identity, user, s.now)
	if err != nil {
		h.logger.Error("listing the sessions of a user for max_sessions_per_identity; the next login enforces it",
			zap.String("session", res.Hash.Short()), zap.Error(err))
		return
	}
	for _, e := range evictable(entries, res.Hash, h.MaxSessionsPerIdentity, s.now, clock.Now(), h.timeouts) {
		ended, rec, err := s.deleteOfUser(e.Hash, user, true)
		if errors.Is(err, store.ErrNotFound) {
			continue // ended meanwhile
		}
		if err != nil {
			h.logger.Error("ending a session over max_sessions_per_identity; the next login enforces it",
				zap.String("session", res.Hash.Short()), zap.String("evicted", e.Hash.Short()), zap.Error(err))
			return
		}
		if rec == nil {
			rec = e.Record
		}
		sessionMetrics.destroyed.WithLabelValues(h.backend, causeEvicted).Inc()
		h.logger.Info("ended the least recently seen session of a user over max_sessions_per_identity",
			zap.String("session", res.Hash.Short()), zap.String("evicted", ended.Short()))
		h.emit(eventDestroyed, sessionEvent{hash: ended, realm: h.realm, record: rec, cause: causeEvicted, sessions: 1})
	}
}

// evictable are the sessions of entries to end so that at most limit live
// ones remain, the one under keep (the login, which began at now and is
// committed at commit) among them: the least recently seen of the others.
// Sessions the timeouts have ended by the commit do not count (as of the
// login's start, one that expired while its app worked made the user one
// over, and a live one was ended for it). A session seen at or after now
// (but not after the clock stepped back since: leastRecentFirstAt), such
// as that of another login of the user in flight at the same time, counts
// but is never ended: two logins at once must not end each other's
// sessions. The later one ends the earlier if
// the cap says so; if the later one listed the sessions before the
// earlier had committed, both stay, one over the cap, until the next
// login.
//
// Whether the clock stepped back is judged at commit, when the sessions
// were listed: a session seen while the login's app worked (for more than
// session.MaxClockLag, an app that waits on a slow identity provider) is
// not ahead of that, and a login never ends it. Judged at now, it was
// taken for one seen before a step back, the least recently seen of all,
// and ended first: the user's other login made meanwhile, or the device
// in use rather than the one idle for hours.
func evictable(entries []store.Entry, keep session.Hash, limit int, now, commit time.Time, t session.Timeouts) []store.Entry {
	if commit.Before(now) {
		commit = now // the clock stepped back during the request
	}
	others, older := 0, make([]store.Entry, 0, len(entries))
	for _, e := range entries {
		if e.Hash == keep || t.Expired(e.Record, commit) {
			continue
		}
		others++
		if e.Record.LastSeen.Before(now) || e.Record.SeenAhead(commit) {
			older = append(older, e)
		}
	}
	excess := min(others-(limit-1), len(older))
	if excess <= 0 {
		return nil
	}
	slices.SortFunc(older, leastRecentFirstAt(commit))
	return older[:excess]
}

// leastRecentFirstAt is leastRecentFirst for a list made at now, after
// the clock may have stepped back: a session seen more than
// session.MaxClockLag after now was seen before the step, and so before
// any session seen since, which a use after the step touched at the
// earlier time it then read (store.Decide); it comes first. A login in
// flight is never that far ahead of now, when now is the commit of the
// login that lists (evictable); it may be that far ahead of the start of
// a login whose app took minutes.
func leastRecentFirstAt(now time.Time) func(a, b store.Entry) int {
	return func(a, b store.Entry) int {
		if aa, ba := a.Record.SeenAhead(now), b.Record.SeenAhead(now); aa != ba {
			if aa {
				return -1
			}
			return 1
		}
		return leastRecentFirst(a, b)
	}
}
