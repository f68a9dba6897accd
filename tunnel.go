package caddysession

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// A tunnel (a WebSocket: an HTTP/1.1 upgrade answered 101, or an HTTP/2
// extended CONNECT answered 2xx) is the longest request there is: the app
// authorised it once, by the session its handshake carried, and
// reverse_proxy then copies both ways for hours. Without this file it
// outlived its session: after a logout, a Destroy-All, a revocation, an
// eviction, the session's expiry or another user's login on it, the tunnel
// kept acting as the user. A tunnel opened with a live session is now
// closed, both ways, once that session ends: at once for an end this
// process commits (every end passes through a handler's relayStore, which
// tells openTunnels), and within the check interval for one committed
// elsewhere (another instance on the same Redis, or expiry), by reading
// the session again while the tunnel is open.

// TunnelsConfig says what happens to a tunnel when its session ends.
type TunnelsConfig struct {
	// How often the session of an open tunnel is read again, to close the
	// tunnel if the session ended where this process cannot see it (on
	// another instance sharing the store, or by expiry), and to keep the
	// session alive under idle_timeout while the tunnel is open (a touch,
	// at most once per touch_interval). Must be shorter than
	// idle_timeout. Default: 1m, or touch_interval if shorter.
	CheckInterval caddy.Duration `json:"check_interval,omitempty"`

	// Keep tunnels open when their session ends, as before this option
	// existed: the app alone decides when to close them. Default: false.
	Keep bool `json:"keep,omitempty"`
}

// provisionTunnels sets tunnelCheck: 0 keeps tunnels open whatever
// becomes of their session.
func (h *Handler) provisionTunnels() {
	h.cleanedUp = new(atomic.Bool)
	c := h.Tunnels
	switch {
	case c != nil && c.Keep:
		h.tunnelCheck = 0
	case c != nil && c.CheckInterval > 0:
		h.tunnelCheck = time.Duration(c.CheckInterval)
	default:
		h.tunnelCheck = min(defaultTunnelCheck, h.timeouts.TouchInterval)
	}
}

// defaultTunnelCheck is how often an open tunnel's session is read again
// by default: a minute's delay for ends this process cannot see, at the
// cost of one read (and at most one touch) per tunnel per minute.
const defaultTunnelCheck = time.Minute

// unmarshalTunnels reads `tunnels <check interval>` or `tunnels keep`.
func (h *Handler) unmarshalTunnels(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	h.Tunnels = new(TunnelsConfig)
	if d.Val() == "keep" {
		h.Tunnels.Keep = true
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	}
	d.Prev()
	return parseDuration(d, &h.Tunnels.CheckInterval)
}

// validateTunnels refuses a check interval that lets the session of an
// open tunnel expire idle between two checks.
func (h *Handler) validateTunnels() error {
	if c := h.Tunnels; c != nil && c.Keep && c.CheckInterval > 0 {
		return errors.New("tunnels: keep takes no check_interval; give one or the other")
	}
	if h.tunnelCheck >= h.timeouts.Idle {
		return fmt.Errorf("tunnels: the check interval (%s) must be shorter than idle_timeout (%s), or an open tunnel's session expires between two checks", h.tunnelCheck, h.timeouts.Idle)
	}
	return nil
}

// serve runs the next handlers; for a request of a live session, with a
// context that the end of that session cancels once the response opens a
// tunnel or streams (responseWriter.watch; reverse_proxy closes both
// connections of a tunnel, and stops copying a stream, when its request's
// context ends). The context is made lazily (watchCtx): a request whose
// response neither tunnels nor streams registers nothing and starts no
// goroutine. Every other request goes on as it came. A session served
// from the stale copy while the store fails is watched too: its checks
// keep it open until the store answers, and an end once it does closes
// it, as for any other.
func (h *Handler) serve(rw *responseWriter, r *http.Request, next caddyhttp.Handler) error {
	s := rw.state
	if s.record == nil || h.tunnelCheck == 0 {
		return serveNext(rw, r, next)
	}
	rw.watchable = true
	rw.ctx.parent = r.Context()
	defer rw.unwatch()
	return serveNext(rw, r.WithContext(&rw.ctx), next)
}

// tunnel is an open tunnel of a session, or a response that streams
// (stream.go), from the response that opened it until its handler
// returns.
type tunnel struct {
	h       *Handler
	seen    string // the value of the identity key the handshake carried
	noTouch bool   // the handshake matched no_touch (or a stream's response said X-Session-Touch: false): the tunnel is no use of the session
	cancel  func()
	opened  bool // set once, by whoever writes the response (serialised with its handler)
	anyUser bool // a session loaded with no user (seen == "") is still the request's once a login gave it one (withheld.go); false for tunnels and streams
	// timer runs the periodic checks, one at a time, each arming the
	// next until the request is over (finished); tm guards it, apart
	// from mu, which a check holds through its store read.
	tm       sync.Mutex
	timer    *time.Timer
	finished bool

	// mu serialises the checks, and guards what follows. hash is also
	// read by openTunnels under its own lock, and written under both.
	mu     sync.Mutex
	hash   session.Hash     // where the session now is
	key    *session.SealKey // the key of hash's ID, nil past a forward record that carried none
	conn   net.Conn         // the hijacked client connection, if any
	closed bool
	// cut is closed, readable without mu: the response's writer reads
	// it on every write of a stream (responseWriter.streamCut).
	cut atomic.Bool
}

// open registers the tunnel once its response has opened it, and starts
// its checks: one timer, no goroutine until a check is due. A tunnel
// (opensTunnel) checks its session at once as well, and a stream does if
// an end was committed in this process, or another instance's change
// told of, since its load (seenAtLoad): an end committed between the
// load of the session and this registration told no one. The check of
// an end this process committed runs before open returns, so before
// anything of the response goes past the registration: run in a
// goroutine, it came after a short stream had sent its whole body to the
// device that was logged out, when the machine was busy; but not for a
// request the store failed for (waitCheck false), which on_store_error
// served, whose read would only wait the store out. It reports whether
// it checked before returning. Told of
// changes alone, the stream's check reads through the cache, as an
// answer's judgement does (withheld.go): what changed is gone from it.
// Past it, every stream of a busy instance paid a Redis read whenever
// Redis told of any key's change (another user's touch, on any
// instance), which it does all the time. The count is
// read after the registration, never before:
// an end counts before it looks for the streams of its session, so it
// either finds this one or this one finds it counted. Read before, an
// end committed in between did neither, and the stream flowed on until
// its periodic check.
func (t *tunnel) open(opensTunnel bool, seenAtLoad seenMark, waitCheck bool) (checked bool) {
	if t.opened {
		return false
	}
	t.opened = true
	if f := testhook.StreamOpening.Load(); f != nil {
		(*f)()
	}
	openTunnels.add(t)
	t.tm.Lock()
	t.timer = time.AfterFunc(t.h.tunnelCheck, t.tick)
	t.tm.Unlock()
	switch seen := openTunnels.seen(); {
	case seen.endedSince(seenAtLoad) && waitCheck:
		t.checkOnce(false)
		return true
	case opensTunnel || seen.endedSince(seenAtLoad):
		go t.checkOnce(false)
	case seen != seenAtLoad:
		go t.checkOnceCached()
	}
	return false
}

// tick is a periodic check, which arms the next while the request lasts.
func (t *tunnel) tick() {
	t.checkOnce(true)
	t.tm.Lock()
	defer t.tm.Unlock()
	if !t.finished {
		t.timer.Reset(t.h.tunnelCheck)
	}
}

// over reports whether the tunnel's request is over: a check due then
// reads nothing.
func (t *tunnel) over() bool {
	t.tm.Lock()
	defer t.tm.Unlock()
	return t.finished
}

// checkOnce checks the tunnel's session, within one interval.
func (t *tunnel) checkOnce(periodic bool) {
	ctx, cancel := context.WithTimeout(context.Background(), t.h.tunnelCheck)
	defer cancel()
	t.check(ctx, periodic)
}

// checkOnceCached is checkOnce for a stream whose session may have
// changed only where the store told this process of it (open): its read
// may use the cache.
func (t *tunnel) checkOnceCached() {
	ctx, cancel := context.WithTimeout(context.Background(), t.h.tunnelCheck)
	defer cancel()
	t.checkThrough(ctx, false, true)
}

// finish ends what the tunnel holds when its request is over.
func (t *tunnel) finish() {
	if t.opened {
		t.tm.Lock()
		t.finished = true
		t.timer.Stop()
		t.tm.Unlock()
		openTunnels.remove(t)
	}
	t.cancel()
}

// hijacked keeps the client connection of an HTTP/1.1 tunnel, so that its
// end closes it even under a handler that ignores its request's context.
func (t *tunnel) hijacked(conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conn = conn
	if t.closed {
		conn.Close()
	}
}

// check reads the tunnel's session again, following its renewals, and
// closes the tunnel if it ended or is now another user's; a periodic
// check of a live one touches it when a touch is due, as a request would.
// A store failure closes nothing (the tunnel is checked again later), but
// for a handler whose config has gone, whose store may be closed. The
// read goes past any cache.
func (t *tunnel) check(ctx context.Context, periodic bool) {
	t.checkThrough(ctx, periodic, false)
}

// checkThrough is check, whose first read goes through the store's cache
// if cached (checkOnceCached).
func (t *tunnel) checkThrough(ctx context.Context, periodic, cached bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.over() {
		return
	}
	h, now := t.h, clock.Now()
	var err error
	if f := testhook.TunnelChecked.Load(); f != nil {
		defer func() {
			failed := err != nil && !errors.Is(err, store.ErrNotFound)
			(*f)(testhook.TunnelCheck{Periodic: periodic, Now: now, Closed: t.closed, Failed: failed})
		}()
	}
	// Neither the read nor the touch copies from a fallback_store: the
	// handshake's load copied the session into the store, and one gone
	// from it has ended there (store.NoCopy says why a copy here would
	// deadlock, or bring the session back).
	ctx = store.NoCopy(ctx)
	for {
		ends := openTunnels.ends.Load()
		read := store.Fresh(ctx)
		if cached {
			read = ctx
		}
		rec, hash, key, readErr := t.follow(read, now)
		if err = readErr; t.unreadable(err) {
			return
		}
		moved := hash != t.hash
		if moved {
			if f := testhook.TunnelFollowed.Load(); f != nil {
				(*f)()
			}
			openTunnels.move(t, hash)
			t.key = key
		}
		// An end committed while this check followed a renewal looked
		// for the tunnel under the hash it was leaving, and missed it:
		// an end counts before it looks, so look again.
		if moved && openTunnels.ends.Load() != ends {
			cached = false // an end of this process: past the cache
			continue
		}
		// NeedsTouch, as a request asks: after the clock stepped back,
		// the session's LastSeen is in the future, and waiting for
		// touch_interval past it touched nothing for as long as the
		// step, while Redis, whose TTL runs on its own clock, dropped
		// the session of the open tunnel idle_timeout after its last
		// touch.
		if periodic && !t.noTouch && h.timeouts.NeedsTouch(rec, now) {
			err = t.touch(ctx, now)
		}
		return
	}
}

// unreadable reports whether a check's read of the session failed, and
// closes the tunnel if that means its session ended (or, for a handler
// whose config has gone, may have).
func (t *tunnel) unreadable(err error) bool {
	h := t.h
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		t.close("its session ended")
	case h.cleanedUp != nil && h.cleanedUp.Load():
		t.close("its config has gone and its session could not be read")
	default:
		h.logger.Warn("reading the session of an open tunnel; it stays open until the next check",
			zap.String("session", t.hash.Short()), zap.Error(err))
	}
	return true
}

// follow reads the session under t.hash, and through its forward records
// the session it was renewed to, as long as it is still of the user the
// tunnel's handshake carried: ErrNotFound if it ended or is another's.
func (t *tunnel) follow(ctx context.Context, now time.Time) (*session.Record, session.Hash, *session.SealKey, error) {
	h, hash, key := t.h, t.hash, t.key
	for hop := 0; hop <= store.MaxHops; hop++ {
		rec, err := h.store.Load(ctx, hash, now, h.timeouts)
		switch {
		case err != nil:
			return nil, hash, key, err
		case rec.Realm != "" && rec.Realm != h.realm:
			return nil, hash, key, store.ErrNotFound
		case !rec.Forwarded():
			if !t.sameUser(rec, hash, key) {
				return nil, hash, key, store.ErrNotFound
			}
			return rec, hash, key, nil
		}
		switch {
		case rec.SuccessorKey() == "":
			// Written by a request that held no key (a handler without
			// seal_values, under which the session was plain): the
			// successor was written plain, as store.Decide's onward
			// says. Taken for another's, the tunnel closed on a
			// renewal of its own user.
			key = nil
		case key != nil:
			if key, err = key.OpenSuccessor(hash, rec); err != nil {
				return nil, hash, nil, store.ErrNotFound
			}
		}
		hash = *rec.Successor
	}
	return nil, hash, key, store.ErrNotFound
}

// sameUser reports whether rec, stored under hash, is still the session of
// the user the tunnel's handshake carried. A sealed record is opened with
// key; one that cannot be opened is taken for another's.
func (t *tunnel) sameUser(rec *session.Record, hash session.Hash, key *session.SealKey) bool {
	if t.anyUser && t.seen == "" {
		return true // an answer computed for no user holds none of the new user's data
	}
	user, ok := t.userOf(rec, hash, key)
	return ok && user == t.seen
}

// userOf is the value of the identity key of rec, stored under hash, a
// sealed record opened with key; false if it cannot be opened.
func (t *tunnel) userOf(rec *session.Record, hash session.Hash, key *session.SealKey) (string, bool) {
	if rec.Sealed {
		if key == nil {
			return "", false
		}
		rec = rec.Clone()
		if err := key.Open(hash, rec); err != nil {
			return "", false
		}
	}
	user, _ := t.h.rules.identityOf(rec)
	return user, true
}

// touch keeps the session alive under idle_timeout: an open tunnel is a
// page in use. A failure is logged, and returned to say that the check
// decided nothing; the next check tries again.
func (t *tunnel) touch(ctx context.Context, now time.Time) error {
	h := t.h
	u := store.Update{
		Hash: t.hash, HasHash: true,
		Identity: h.identity, Seen: t.seen, Realm: h.realm,
		Now: now, Commit: now, Timeouts: h.timeouts, Limits: h.limits,
	}
	if t.key != nil || h.sealIndex != nil {
		u.Seal = &store.Sealing{Key: t.key, Index: h.sealIndex}
	}
	_, err := h.store.Update(ctx, u)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.logger.Warn("touching the session of an open tunnel",
			zap.String("session", t.hash.Short()), zap.Error(err))
	}
	return err
}

// close closes the tunnel both ways: its request's context, which
// reverse_proxy answers by closing the upstream connection and then the
// client's (an HTTP/2 stream ends), and the hijacked client connection.
func (t *tunnel) close(why string) {
	t.closed = true
	t.cut.Store(true)
	t.cancel()
	if t.conn != nil {
		t.conn.Close()
	}
	t.h.logger.Info("closing a tunnel: "+why, zap.String("session", t.hash.Short()))
}

// tunnelSet is the open tunnels of the process, of every config, by where
// their session now is.
type tunnelSet struct {
	mu  sync.Mutex
	all map[*tunnel]struct{}
	n   atomic.Int32 // len(all), read without the lock on every end
	// ends counts the ends of sessions this process has committed (ended,
	// endedUser): a stream registered (add) after an end its session's
	// load did not see looks at its session at once. Counted before n is
	// read, and read after add, so that an end either finds the stream
	// or the stream finds the end.
	ends atomic.Uint64
	// changed counts what a store shared with other instances told this
	// process of their writes (sessionsChanged): Redis invalidating keys
	// this process read. One of them may have been an end on another
	// instance of a session a request here is serving.
	changed atomic.Uint64
}

// seen is what this process has seen of ends: the ends it committed and
// the changes it was told of, each counted in its half. A request that
// takes it before its load and compares it before its answer knows
// whether its session may have ended meanwhile, for two atomic loads.
// Each half wraps on its own; a request does not live through 2^32 ends.
func (ts *tunnelSet) seen() seenMark {
	return seenMark(ts.ends.Load()<<32 | ts.changed.Load()&(1<<32-1))
}

// seenMark is tunnelSet.seen at some moment.
type seenMark uint64

// endedSince reports whether this process committed an end since m.
func (m seenMark) endedSince(then seenMark) bool { return m>>32 != then>>32 }

// sessionsChanged is told by a shared store's cache that another instance
// (or this one) changed keys this process had read (nil: any key): Redis
// invalidated them. hashes are the sessions those keys hold.
func sessionsChanged(keys []string, hashes []session.Hash) {
	openTunnels.changed.Add(1)
	openTunnels.toldOf(hashes)
	if f := testhook.StoreChanged.Load(); f != nil {
		(*f)(keys)
	}
}

// toldOf checks at once the open tunnels and streams of the sessions that
// the store said changed: one may have ended on another instance, which
// their periodic check would find only at its interval. The read goes
// through the cache, which the news kept right (checkOnceCached); each
// check runs in a goroutine of its own, since the news comes on the
// connection's reader, which no read may wait for. News of every key (a
// connection lost) checks nothing: its periodic check finds what ended.
func (ts *tunnelSet) toldOf(hashes []session.Hash) {
	if len(hashes) == 0 || ts.n.Load() == 0 {
		return
	}
	for _, t := range ts.matching(func(t *tunnel) bool { return slices.Contains(hashes, t.hash) }) {
		go t.checkOnceCached()
	}
}

var openTunnels tunnelSet

func (ts *tunnelSet) add(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.all == nil {
		ts.all = map[*tunnel]struct{}{}
	}
	ts.all[t] = struct{}{}
	ts.n.Store(int32(len(ts.all)))
}

func (ts *tunnelSet) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.all, t)
	ts.n.Store(int32(len(ts.all)))
}

// move records that t's session now lives under hash; t.mu is held.
func (ts *tunnelSet) move(t *tunnel, hash session.Hash) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t.hash = hash
}

// matching returns the open tunnels for which match holds.
func (ts *tunnelSet) matching(match func(*tunnel) bool) []*tunnel {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []*tunnel
	for t := range ts.all {
		if match(t) {
			out = append(out, t)
		}
	}
	return out
}

// ended checks, before the end's store call returns, the tunnels of the
// session under hash, which has just ended or moved to another ID: a
// renewal of the same user keeps them, anything else closes them.
func (ts *tunnelSet) ended(ctx context.Context, hash session.Hash) {
	ts.ends.Add(1)
	if ts.n.Load() == 0 {
		return
	}
	for _, t := range ts.matching(func(t *tunnel) bool { return t.hash == hash }) {
		t.check(context.WithoutCancel(ctx), false)
	}
}

// endedUser checks the tunnels of realm whose user is value (or its keyed
// hash, as a sealed index names it) for key: DeleteByIdentity has just
// ended that user's sessions.
func (ts *tunnelSet) endedUser(ctx context.Context, realm, key, value string) {
	ts.ends.Add(1)
	if ts.n.Load() == 0 {
		return
	}
	for _, t := range ts.matching(func(t *tunnel) bool { return t.of(realm, key, value) }) {
		t.check(context.WithoutCancel(ctx), false)
	}
}

// of reports whether t is a tunnel of the user value names in realm.
func (t *tunnel) of(realm, key, value string) bool {
	h := t.h
	if h.realm != realm || h.identity != key || t.seen == "" {
		return false
	}
	return t.seen == value || h.sealIndex != nil && h.sealIndex.Tag(key, t.seen) == value
}

// Hijack hands the client connection to the handler that switches
// protocols (reverse_proxy, through http.ResponseController), keeping it
// for the tunnel's end.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if err := rw.undefer(); err != nil { // what was written goes first, as without the deferral
		return nil, nil, err
	}
	conn, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil && rw.tunnel != nil {
		rw.tunnel.hijacked(conn)
	}
	return conn, brw, err
}

var _ http.Hijacker = (*responseWriter)(nil)
