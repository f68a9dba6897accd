package caddysession

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// A response that streams (an event stream, a chunked download, anything
// reverse_proxy forwards with flush_interval -1, which it picks for
// text/event-stream and for a body of unknown length) is, like a tunnel,
// the session's user's data flowing for as long as it is open: the app
// authorised it once, at its start. Without this file it outlived its
// session: an admin's revocation or a logout everywhere left the user's
// private event stream flowing on the device that was logged out. Such a
// response is now watched as a tunnel is (tunnel.go: the same watcher and
// registry), and its request's context cancelled once its session ends.
//
// What counts as a stream: a response whose writer is flushed before its
// handler returns, for a request that carried a live session. A response
// that is written and never flushed is bounded by its own length, and
// pays for nothing: it is never registered, and starts no goroutine. Its
// request gets a context that can be cancelled all the same (it must be
// in place before the handler runs), made lazily: nothing beyond the
// request's shallow copy until a handler asks for its Done channel.

// watchCtx is the context of a request whose response may become a tunnel
// or a stream: its parent, until a handler asks for Done or the response's
// session ends; from then on a child of the parent that the end cancels.
// It lives inside the responseWriter, so that a request that never waits
// on its context (no reverse_proxy, no watch) allocates no context at all.
type watchCtx struct {
	parent context.Context
	made   atomic.Bool // ctx and cancel are set
	mu     sync.Mutex  // serialises making them
	ctx    context.Context
	cancel context.CancelFunc
}

// inner makes the cancellable child on first use.
func (c *watchCtx) inner() context.Context {
	if c.made.Load() {
		return c.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.made.Load() {
		c.ctx, c.cancel = context.WithCancel(c.parent)
		c.made.Store(true)
	}
	return c.ctx
}

func (c *watchCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *watchCtx) Done() <-chan struct{} { return c.inner().Done() }

// Err is the parent's until the child is made: until then nothing but the
// parent can have ended the request.
func (c *watchCtx) Err() error {
	if c.made.Load() {
		return c.ctx.Err()
	}
	return c.parent.Err()
}

// Value goes through the child once it is made, so that context.Cause and
// the contexts derived from this one find the child's cancellation.
func (c *watchCtx) Value(key any) any {
	if c.made.Load() {
		return c.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// end cancels the request: its session ended.
func (c *watchCtx) end() {
	c.inner()
	c.cancel()
}

// release lets go of the child, if it was made, once the request is over.
func (c *watchCtx) release() {
	if c.made.Load() {
		c.cancel()
	}
}

// watch starts watching the session of the response's request, once the
// response opened a tunnel or started to stream: an end of that session
// cancels the request. A tunnel's session is read at once as well; a
// stream's only if an end was committed in this process, or a change
// on another instance told of, since its load (seenAtLoad), which may
// have been its session's: a page that the app
// sends in chunks streams too, and would otherwise cost every such page a
// read of its session past any cache. It does nothing for a request that is not
// watchable (Handler.serve), or already watched, or whose own commands
// ended its session or made it another user's, or said to (leaving: the
// store drops them for a session that had ended already): the app
// answered knowing that (a logout page sent in chunks), and cutting its
// answer would only lose it, as withholding it would (withheld.go).
// anyUser judges the session as an answer's (withheld.go): a login on a
// session that had no user keeps the response (longBodyCut).
func (rw *responseWriter) watch(opensTunnel, anyUser bool) {
	if !rw.watchable || rw.tunnel != nil {
		return
	}
	s := rw.state
	if s.leftSession || s.endedAll || s.leaving {
		return
	}
	h := s.handler
	t := &tunnel{h: h, hash: s.hash, cancel: rw.ctx.end, anyUser: anyUser}
	t.seen, _ = h.rules.identityOf(s.record)
	// The key of the session's ID, derived here if the load derived
	// none: a handler with seal_values (a nested one, a reload that
	// turned it on, another instance) may seal the session, or renew it
	// to a sealed successor, while the tunnel is open, and without the
	// key the tunnel took its own user's session for another's and
	// closed. The tunnel keeps the key, never the ID.
	t.key = s.ownKey()
	if l := rw.login; l != nil {
		t.hash, t.key, t.seen = l.hash, l.key, l.seen
	}
	t.noTouch = s.untouched || s.turnedAway
	if !t.noTouch && (h.noTouch != nil || h.sharedLoad) {
		matched, err := rw.matchNoTouch()
		t.noTouch = matched || err != nil
	}
	rw.tunnel = t
	rw.tunnelChecked = t.open(opensTunnel, rw.seenAtLoad, !s.storeFailed)
}

// loggedIn is the session a login gave a user to while the app worked on
// a request that loaded it with none, as the header's judgement found it:
// where it is stored, the key of its ID, and its user.
type loggedIn struct {
	hash session.Hash
	key  *session.SealKey
	seen string
}

// keepLogin keeps, for the response's watch, the session the header's
// judgement (t, an answer's check) found live under hash, if a login gave
// it a user since the request loaded it with none. The answer was
// delivered as one computed for no one; a watch started from the load
// took that login for an end, as a stream's does, and cut the page right
// after its header: an app server sends a page of unknown length chunked
// (gunicorn), which reverse_proxy flushes, and so streams. From the
// login, the watch cuts at what ends that session or gives it another
// user.
func (rw *responseWriter) keepLogin(t *tunnel, rec *session.Record, hash session.Hash, key *session.SealKey) {
	if t.seen != "" {
		return
	}
	if user, ok := t.userOf(rec, hash, key); ok && user != "" {
		rw.login = &loggedIn{hash: hash, key: key, seen: user}
	}
}

// longBodyCut reports that the response streams and its session ended
// (streamCut), once it watched a body that is still being written a
// while after its request loaded the session: a large or slow download
// that the app never flushes (the server's buffer sends it as it fills,
// and the upstream's Content-Length keeps reverse_proxy from flushing)
// is the session's user's data flowing as a stream's is, and unwatched
// it outlived its session. Its first write from answerRecheck after the
// load (or the tunnels interval, if shorter) watches it as a stream, and
// judges its session there and then, as a slow answer's header is judged
// (withheld.go), unless the header's judgement read it and nothing
// ended or changed since the load (judged): an end cuts the rest of the
// body. It is judged as an answer is, not as a stream: a login on a
// session that had no user keeps it (anyUser). A body of under a second
// is not watched, as an answer of under a second is judged only on what
// this process saw; it pays a clock read per write until then. Nor is a
// body whose own commit moved its session to another ID (a renewal, a
// remember): its watch would start from the loaded ID, whose forward
// record may be gone by then; the header's commit found that session
// live.
func (rw *responseWriter) longBodyCut() bool {
	if rw.tunnel == nil && rw.watchable && !rw.state.movedOn {
		s := rw.state
		if clock.Now().Sub(s.now) >= min(answerRecheck, s.handler.tunnelCheck) {
			rw.watch(false, true)
			if rw.tunnel != nil && !rw.tunnelChecked && !s.storeFailed && (!rw.judged || openTunnels.seen() != rw.seenAtLoad) {
				// Not judged yet, or something ended since the load,
				// perhaps after the header's judgement: the check that
				// registering started may come after the next writes.
				// Not for a request the store failed for, which
				// on_store_error served: the read would only wait the
				// store out again, as the header's judgement does not.
				rw.tunnel.checkOnce(false)
			}
		}
	}
	return rw.streamCut()
}

// unwatch ends what watching the request holds, once it is over.
func (rw *responseWriter) unwatch() {
	if rw.tunnel != nil {
		rw.tunnel.finish()
		return
	}
	rw.ctx.release()
}
