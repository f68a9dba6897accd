package caddysession

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/store"
)

// A response that is written once, at the end (a long poll that answers
// after 30s, a slow report, a slow upload), is the session's user's data
// as much as a stream is, but it never flushes before its handler
// returns, so it is never watched (stream.go). Without this file, a long
// poll started while the user was logged in, and answered after an admin
// revoked the session or the user pressed "log out everywhere" on another
// device, delivered the user's private data to the device that had been
// logged out.
//
// The rule: when such a response's header is about to be written, after
// its commands were committed and before any byte reaches the client, a
// request that carried a live session reads its session again if it may
// have ended since the load, and no commit's write of it (its own, or a
// nested handler's: requestState.stood) just found it live: an end was
// committed in this process since then, or Redis told this process that
// another instance changed sessions it had read (openTunnels.seen, which
// the streams read as well), or the request took longer than
// answerRecheck (an end on another instance that nothing told of: a
// Redis that refuses client tracking, or the session's expiry). The
// judgement is the tunnel's (tunnel.follow): a renewal of the same user stands, anything
// else has ended, but for a login on a session that had no user when
// the request loaded it: the app computed its answer for no one, and
// withholding it would only fail the requests that a page sent beside
// its login. A response whose own commands ended the session or made
// it another user's (a logout page, a login), or said to, is the app's
// answer knowing that, and is delivered. One whose session ended is
// withheld: the client gets answerWithheldStatus with none of the app's
// headers or body, no command of it applies (the store dropped them
// already: the session had ended), and the flash values it took are put
// back, where the store refuses them, the session being gone.
// A fast request of a process that ended no session, and was told of no
// change, pays two atomic loads and a clock read, nothing more; one that
// was reads its session where the store keeps it for this process (the
// cache that the news kept right), and Redis only if its session was
// among the changed ones.

// answerRecheck is how long a request may take before its answer reads
// its session again whatever this process saw, past any cache: an end
// on another instance that nothing told this process of, or the
// session's expiry, is found for answers slower than this (or than the
// tunnels check interval, if shorter). One read of the session per
// answer that took a second or more.
const answerRecheck = time.Second

// answerWithheldStatus is what the client gets in place of an answer
// whose session ended while the app worked on it: the server will not
// deliver it to a client that no longer holds the session.
const answerWithheldStatus = http.StatusForbidden

// errSessionEnded is the commit error of a response withheld because its
// session ended while the app worked on it.
var errSessionEnded = errors.New("the session ended while the app worked on the request: its answer is withheld")

// sessionEnded reports whether the response about to be written, whose
// commands were committed, must be withheld because its session ended
// since the load. It reads the store only when the session may have
// ended: see the top of this file. informational judges a 1xx the app
// sends before its final answer, whose commands are not committed yet:
// one that finds the session ended is not sent, and the final answer is
// judged again.
func (rw *responseWriter) sessionEnded(informational bool) bool {
	if !rw.endedMeanwhile() {
		return false
	}
	s := rw.state
	if informational {
		s.handler.logger.Info("not sending an informational response: its session ended while the app worked on the request",
			zap.String("session", s.hash.Short()), zap.String("uri", s.request.RequestURI))
		return true
	}
	s.handler.logger.Info("withholding an answer: its session ended while the app worked on the request",
		zap.String("session", s.hash.Short()), zap.String("uri", s.request.RequestURI),
		zap.Int("status", answerWithheldStatus))
	return true
}

// withdrawOnError takes the session off a request whose handlers returned
// err without writing a response (the app went down: reverse_proxy's 502
// or 504; a handle_response or intercept route that ends in `error`), if
// the session ended while the app worked on it, as a withheld answer's
// is (withdraw): Caddy gives the error to the error routes, and one that
// proxies to the app (handle_errors rendering its error pages) rendered
// the page for the ended session's user, with its values, signed token,
// devices list, CSRF token and flash values, and sent it to the device
// that was logged out. The error keeps its status: it holds nothing of
// the session. It reads the store only when sessionEnded would.
func (rw *responseWriter) withdrawOnError(err error) {
	if !rw.endedMeanwhile() {
		return
	}
	s := rw.state
	s.handler.logger.Info("an error goes to the error routes without its session: the session ended while the app worked on the request",
		zap.String("session", s.hash.Short()), zap.String("uri", s.request.RequestURI),
		zap.Int("status", errorStatus(err)))
	s.withdraw()
}

// endedMeanwhile reports whether the request's session ended since its
// load, reading it again only if it may have: see the top of this file.
func (rw *responseWriter) endedMeanwhile() bool {
	if !rw.watchable || rw.tunnel != nil {
		return false
	}
	s := rw.state
	if s.leftSession || s.endedAll || s.leaving || s.stood {
		rw.judged = s.stood
		return false
	}
	if s.degraded || s.storeFailed {
		// The store failed for this request, and on_store_error served
		// it: a read now would only wait out the store's timeouts again
		// before delivering, as a read that fails does.
		rw.judged = true
		return false
	}
	h := s.handler
	now := clock.Now()
	slow := now.Sub(s.now) >= min(answerRecheck, h.tunnelCheck)
	seen := openTunnels.seen()
	if !slow && seen == rw.seenAtLoad {
		return false
	}
	t := &tunnel{h: h, hash: s.hash, key: s.ownKey(), anyUser: true}
	t.seen, _ = h.rules.identityOf(s.record)
	ctx, cancel := context.WithTimeout(store.NoCopy(s.commitContext()), h.tunnelCheck)
	defer cancel()
	if slow || seen.endedSince(rw.seenAtLoad) {
		// Past the cache: an end that nothing told this process of
		// may sit behind a copy it holds. Told of changes alone, the
		// read may use the cache: what changed is gone from it.
		ctx = store.Fresh(ctx)
	}
	rec, hash, key, err := t.follow(ctx, now)
	switch {
	case err == nil:
		rw.judged = true
		rw.keepLogin(t, rec, hash, key)
		return false
	case errors.Is(err, store.ErrNotFound):
	case h.cleanedUp != nil && h.cleanedUp.Load():
		// As for a tunnel: the config has gone, and its store may be
		// closed; the session cannot be shown to stand.
	default:
		// As for a tunnel: a read that fails ends nothing.
		h.logger.Warn("reading the session of a slow answer before it is sent; it is sent",
			zap.String("session", s.hash.Short()), zap.Error(err))
		return false
	}
	return true
}

// withdraw takes the request's session off the request before the error
// routes get it: the values, the signed token, the devices list, the CSRF
// token and the flash values this handler forwarded, in its namespace,
// the cookie of forward_cookie, the placeholders that show them, and the
// session matchers' view of it. An error route that proxies to the app
// (handle_errors rendering its pages with the app) had it render the page
// for the session's user. It is called for an answer withheld because
// its session ended while the app worked on it (whose cookie's ID may
// lead to another user's session for the forward record's grace period),
// for a request the CSRF check refused, and for an error that another
// site's error routes may answer (leaveToErrorRoutes).
//
// The session matchers read the request's load (loadVar) and, for a CEL
// session(), the state of the last handler that ran (stateVar), which a
// handler nested in this one that shares its load has made its own copy
// of (adopt): those are withdrawn with s. A nested handler that leaves
// the answer to this one to judge (`tunnels keep`) left its copy in
// both, and the error routes' session() matched the ended session.
func (s *requestState) withdraw() {
	s.handler.unforward(s.request.Header)
	hidePlaceholders(s.request)
	s.withdrawn = true
	ctx := s.request.Context()
	for _, key := range [...]string{s.handler.loadKey(), stateVar} {
		if o, ok := caddyhttp.GetVar(ctx, key).(*requestState); ok && o != s && o.handler.sharesLoad(s.handler) {
			o.withdrawn = true
		}
	}
}
