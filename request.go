package caddysession

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
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
}

// stateVar is where a request's loaded session is kept among the request's
// vars, so that the session matcher and the handler load it once between
// them. A NUL byte keeps it out of reach of {http.vars.*} placeholders.
const stateVar = "\x00caddy-session"

// requestState returns the request's session, loading it on first use.
func (h *Handler) requestState(r *http.Request) (*requestState, error) {
	if s, ok := caddyhttp.GetVar(r.Context(), stateVar).(*requestState); ok {
		if s.handler == h {
			return s, nil
		}
		if s.handler.storeName == h.storeName && s.handler.cookie.Name == h.cookie.Name {
			// Loaded by a matcher through another handler of the same store.
			mine := *s
			mine.handler = h
			caddyhttp.SetVar(r.Context(), stateVar, &mine)
			return &mine, nil
		}
	}
	s := &requestState{handler: h, request: r, now: clock.Now()}
	var room [3]string // the candidates, on the stack
	if err := s.load(h.cookie.AppendCandidates(room[:0], r)); err != nil {
		return nil, err
	}
	caddyhttp.SetVar(r.Context(), stateVar, s)
	return s, nil
}

// load finds the first candidate ID the store knows. An unknown ID (forged,
// expired, destroyed, rotated away) is never adopted: the request stays
// anonymous and gets a new ID when it first writes.
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
			return fmt.Errorf("reading session: %w", err)
		}
		s.hash, s.record = hash, rec
		return nil
	}
	return nil
}

// commit applies the commands in the response headers hdr for a response
// with this status, and sets the session cookie if the ID changed. A
// returned error means the store failed and the response must not be
// delivered as if it had succeeded.
func (s *requestState) commit(hdr http.Header, status int) error {
	h := s.handler
	patch, err := h.protocol.TakeCommands(hdr)
	if status >= 500 {
		if patch != nil || err != nil {
			h.logger.Debug("ignoring session commands on an error response", zap.Int("status", status))
		}
		patch = nil
	} else if err != nil {
		h.logRejected(s, err)
		patch = nil
	}

	u := store.Update{
		Patch:    patch,
		Identity: h.identity,
		Now:      s.now,
		Timeouts: h.timeouts,
		Limits:   h.limits,
	}
	if s.record != nil {
		u.Hash, u.HasHash = s.hash, true
	}
	var newID string
	destroy := patch != nil && patch.Destroy
	sets := patch != nil && len(patch.Set) > 0
	// Only setting a key creates a session; deleting one from nothing
	// leaves the request anonymous.
	creating := sets && (s.record == nil || destroy)
	if creating || s.record != nil && !destroy && s.rotates(patch) {
		newID, u.NewHash = newSessionID()
	}
	write := u.NewHash != nil || s.record != nil &&
		(patch.Changes() || destroy || h.timeouts.NeedsTouch(s.record, s.now))
	if !write {
		return nil // the common read path: nothing to store
	}
	touchOnly := u.NewHash == nil && !patch.Changes() && !destroy
	if touchOnly {
		// Requests of one session often come in parallel (a page and its
		// assets), and all of them loaded the record before any touch
		// was stored: one of them touches, the others need not.
		if !h.touches.claim(s.hash, s.now, h.timeouts.TouchInterval) {
			return nil
		}
	}

	if patch != nil && patch.DestroyAll && s.record != nil {
		if err := s.destroyAll(); err != nil {
			return err
		}
	}

	rec, err := h.store.Update(s.request.Context(), u)
	if errors.Is(err, store.ErrNotFound) && sets {
		// The session ended since this request began (a logout in another
		// tab, expiry): its data is gone, so the keys start a new session.
		u.HasHash, u.Patch = false, &session.Patch{Set: patch.Set}
		newID, u.NewHash = newSessionID()
		rec, err = h.store.Update(s.request.Context(), u)
	}
	var ruleErr *session.RuleError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // a touch of a session that has just ended
	case errors.As(err, &ruleErr):
		h.logRejected(s, err)
		return nil
	case err != nil:
		if touchOnly {
			h.touches.release(s.hash) // let the next request try again
		}
		h.logger.Error("writing session to store",
			zap.String("session", s.hash.Short()), zap.Error(err))
		return fmt.Errorf("writing session: %w", err)
	}

	tls := s.request.TLS != nil
	hash := s.hash
	switch {
	case rec != nil && newID != "":
		hash = *u.NewHash
		setCookie(hdr, h.cookie.Issue(newID, tls))
		renewal := u.HasHash && !destroy
		if renewal {
			sessionMetrics.renewed.WithLabelValues(h.backend).Inc()
		} else {
			sessionMetrics.created.WithLabelValues(h.backend).Inc()
		}
		h.logger.Debug("session issued", zap.String("session", hash.Short()), zap.Bool("renewal", renewal))
	case rec == nil && s.record != nil:
		setCookie(hdr, h.cookie.Expire(tls))
		if !patch.DestroyAll { // destroyAll has counted it
			sessionMetrics.destroyed.WithLabelValues(h.backend, "logout").Inc()
		}
		h.logger.Debug("session destroyed", zap.String("session", s.hash.Short()))
	}
	s.updatePlaceholders(hash, rec)
	return nil
}

func newSessionID() (string, *session.Hash) {
	id := session.NewID()
	hash := session.HashID(id)
	return id, &hash
}

// rotates reports whether the patch gives the session a new ID: asked for,
// or a change of a renew_on key such as a login.
func (s *requestState) rotates(p *session.Patch) bool {
	if p == nil {
		return false
	}
	if p.Renew {
		return true
	}
	for _, k := range s.handler.RenewOn {
		old, had := s.record.Values[k]
		if v, ok := p.Set[k]; ok && (!had || v != old) {
			return true
		}
		if had && slices.Contains(p.Delete, k) {
			return true
		}
	}
	return false
}

// destroyAll ends every session of the current session's user, this one
// included. A session with no identity key only ends itself.
func (s *requestState) destroyAll() error {
	h := s.handler
	user, ok := s.record.Values[h.identity]
	if !ok {
		sessionMetrics.destroyed.WithLabelValues(h.backend, "logout_all").Inc()
		return nil
	}
	n, err := h.store.DeleteByIdentity(s.request.Context(), h.identity, user)
	if err != nil {
		h.logger.Error("ending all sessions of a user",
			zap.String("session", s.hash.Short()), zap.Error(err))
		return fmt.Errorf("ending all sessions of a user: %w", err)
	}
	sessionMetrics.destroyed.WithLabelValues(h.backend, "logout_all").Add(float64(n))
	h.logger.Info("ended every session of a user",
		zap.String("session", s.hash.Short()), zap.Int("sessions", n))
	return nil
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

// setPlaceholders publishes the loaded session as {http.session.<key>} and
// a short hash of its ID as {http.session_hash}.
func (s *requestState) setPlaceholders() {
	if s.record == nil {
		return
	}
	repl := s.request.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	// The values are set as pointers into one array, and the hash as a
	// pointer formatted when read: a string in an interface would cost an
	// allocation each.
	repl.Set(placeholderHash, (*shortHash)(&s.hash))
	values := make([]placeholderValue, 0, len(s.record.Values))
	for k, v := range s.record.Values {
		values = append(values, placeholderValue(v))
		repl.Set(placeholderName(k), &values[len(values)-1])
	}
}

// shortHash is a session hash that formats as Hash.Short.
type shortHash session.Hash

func (h *shortHash) String() string { return (*session.Hash)(h).Short() }

// placeholderValue is a session value as a placeholder; Caddy formats a
// fmt.Stringer with its String method.
type placeholderValue string

func (v *placeholderValue) String() string { return string(*v) }

// placeholderNames caches placeholderName by key, up to maxNames keys: a
// name per key per request was the most allocated thing of a read.
var placeholderNames struct {
	sync.Map // string → string
	n        atomic.Int32
}

const maxNames = 1024

// placeholderName is the placeholder of key: http.session.<key>.
func placeholderName(key string) string {
	if name, ok := placeholderNames.Load(key); ok {
		return name.(string)
	}
	name := placeholderPrefix + key
	if placeholderNames.n.Load() < maxNames {
		if _, loaded := placeholderNames.LoadOrStore(key, name); !loaded {
			placeholderNames.n.Add(1)
		}
	}
	return name
}

// updatePlaceholders makes later readers (access logs, handlers that run
// after the response) see the session as it stands after the commit.
func (s *requestState) updatePlaceholders(hash session.Hash, rec *session.Record) {
	repl := s.request.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if s.record != nil {
		for k := range s.record.Values {
			repl.Delete(placeholderName(k))
		}
	}
	repl.Delete(placeholderHash)
	if rec == nil {
		return
	}
	repl.Set(placeholderHash, hash.Short())
	for k, v := range rec.Values {
		repl.Set(placeholderName(k), v)
	}
}

const (
	placeholderPrefix = "http.session."
	placeholderHash   = "http.session_hash"
)

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
