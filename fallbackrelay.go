package caddysession

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// A session that ends in a store another handler falls back to must end
// in that handler's copy too. A handler with fallback_store copies a
// session into its store on first use and leaves it in the old one; a
// handler whose store is the old one, and has no fallback_store, ends it
// there only: one of the previous config, whose request was in flight
// across the reload that added fallback_store, or one of another site of
// the config. Its logout, revocation or renewal would then leave the copy
// live, opened by the cookie the browser still holds. The copy in flight
// is safe without this: it checks the old store after it imports
// (store.CopyPage); an end committed after that check is what the relay
// carries over. It needs no stored record of the end, so the stored
// layout stays as it is.

// The other way round, a session that ends in the new store through a
// handler without fallback_store (another site of the config; the config
// after the reload that removes fallback_store, while a request of the
// one before is in flight) must end in the old store too, or a handler
// falling back to it copies the session back on its next request. The
// handlers moving sessions into the store are read before the end: one
// whose config goes meanwhile may still be copying, and its copy either
// sees the old store's end or lands before the new store's second one.

// fallbackRelay is, for one store, the handlers of any config whose
// fallback_store it is (watchers), and those whose store it is and that
// have a fallback_store (movers), while their configs run.
type fallbackRelay struct {
	mu               sync.Mutex
	watchers, movers []*Handler
	// n and nm are len(watchers) and len(movers), read without the lock
	// on every end: zero but for the time of a move.
	n, nm atomic.Int32
}

var (
	relaysMu sync.Mutex
	relays   = map[string]*fallbackRelay{}
	// moveMu keeps a handler's fallback_store registered (add, remove)
	// while a copy on first use that found it registered runs: once the
	// last config that moves sessions from one store to another is gone,
	// no copy from before lands after.
	moveMu sync.RWMutex
)

// relayFor returns the relay of the store named name. Relays are kept
// for the life of the process: one per store name ever configured.
func relayFor(name string) *fallbackRelay {
	relaysMu.Lock()
	defer relaysMu.Unlock()
	r, ok := relays[name]
	if !ok {
		r = new(fallbackRelay)
		relays[name] = r
	}
	return r
}

// copying is the handler's store.Fallback.Copying: a copy from its
// fallback_store into its store is made while a handler of a running
// config (this one's, or a later one's) moves sessions from the one to the
// other. After the reload that removes fallback_store, a request of the
// config before, still in flight, copies nothing back: the new config may
// have ended the session in the store since, and the old store still
// holds it.
func (h *Handler) copying() (done func(), ok bool) {
	moveMu.RLock()
	if relayFor(h.fallbackName).moving(h.storeName) {
		return moveMu.RUnlock, true
	}
	moveMu.RUnlock()
	return nil, false
}

// moving reports whether a handler that falls back to the relay's store
// keeps its sessions in the store named to.
func (r *fallbackRelay) moving(to string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.watchers, func(w *Handler) bool { return w.storeName == to })
}

// watch registers a handler with fallback_store with the relays of both
// its stores; unwatch takes it back. moveMu is held.
func (h *Handler) watch() {
	old, own := relayFor(h.fallbackName), relayFor(h.storeName)
	old.mu.Lock()
	old.watchers = append(old.watchers, h)
	old.n.Store(int32(len(old.watchers)))
	old.mu.Unlock()
	own.mu.Lock()
	own.movers = append(own.movers, h)
	own.nm.Store(int32(len(own.movers)))
	own.mu.Unlock()
}

func (h *Handler) unwatch() {
	old, own := relayFor(h.fallbackName), relayFor(h.storeName)
	is := func(w *Handler) bool { return w == h }
	old.mu.Lock()
	old.watchers = slices.DeleteFunc(old.watchers, is)
	old.n.Store(int32(len(old.watchers)))
	old.mu.Unlock()
	own.mu.Lock()
	own.movers = slices.DeleteFunc(own.movers, is)
	own.nm.Store(int32(len(own.movers)))
	own.mu.Unlock()
}

// moversNow returns the handlers moving sessions into the relay's store,
// one per fallback_store; nil when there are none.
func (r *fallbackRelay) moversNow() []*Handler {
	if r.nm.Load() == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Handler
	for _, m := range r.movers {
		if !slices.ContainsFunc(out, func(o *Handler) bool { return o.fallbackName == m.fallbackName }) {
			out = append(out, m)
		}
	}
	return out
}

// endInOld ends hash in the fallback_store of each of movers, then in st
// (the new store, as is) again: a copy made meanwhile either found the
// old store's session gone or landed before.
func endInOld(ctx context.Context, st store.Store, movers []*Handler, hash session.Hash) {
	for _, m := range movers {
		f := &store.Fallback{New: st, Old: m.fallback.Old, Identity: m.identity}
		if err := f.Delete(ctx, hash); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.logger.Error("ending in the fallback_store a session that ended in the store; a request falling back to it may copy it back",
				zap.String("session", hash.Short()), zap.Error(err))
		}
	}
}

// endUserInOld is endInOld for a user's sessions.
func endUserInOld(ctx context.Context, st store.Store, movers []*Handler, realm, key, value string) {
	for _, m := range movers {
		old := m.fallback.Old
		if m.lookupIndex != nil {
			old = sealedIndex{Store: old, keys: []*session.IndexKey{m.lookupIndex}}
		}
		_, err := old.DeleteByIdentity(ctx, realm, key, value)
		if err == nil {
			_, err = st.DeleteByIdentity(ctx, realm, key, value)
		}
		if err != nil {
			m.logger.Error("ending in the fallback_store the sessions of a user that ended in the store; a request falling back to it may copy them back",
				zap.Error(err))
		}
	}
}

// targets returns the stores the watchers copy sessions into, one per
// store name, each as its handler writes it (stale copy, sealed index),
// with the handler.
func (r *fallbackRelay) targets() []*Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Handler, 0, len(r.watchers))
	for _, w := range r.watchers {
		if !slices.ContainsFunc(out, func(o *Handler) bool { return o.storeName == w.storeName }) {
			out = append(out, w)
		}
	}
	return out
}

// relayTarget is the handler's store without its fallback_store: a copy
// is ended there, never in the old store, which ended it already.
func (h *Handler) relayTarget() store.Store {
	st := h.base
	if h.stale != nil {
		st = &staleStore{Store: st, copy: h.stale, identity: h.identity, now: clock.Now}
	} else {
		st = h.tellsStaleCopy(st)
	}
	if h.lookupIndex != nil {
		st = sealedIndex{Store: st, keys: []*session.IndexKey{h.lookupIndex}}
	}
	return st
}

// ended ends hash in every watcher's store, and the sessions that
// store renewed it to as long as they are still of realm and of the user
// whom who names for the watcher's identity key (a request of the new
// config renewed the copy before the old store's end committed: in one
// store, the end would have followed the forward record). Failures are
// logged: the end itself has committed, and the copy stays live only
// until it ends in turn.
func (r *fallbackRelay) ended(ctx context.Context, hash session.Hash, realm string, now time.Time, who func(w *Handler) (key, seen string)) {
	for _, w := range r.targets() {
		key, seen := who(w)
		follow := func(rec *session.Record) bool {
			v, _ := rec.IdentityValue(key)
			return (rec.Realm == "" || rec.Realm == realm) && v == seen
		}
		_, _, err := deleteFollowing(ctx, w.relayTarget(), store.StoredDeadlines, hash, now, follow)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			w.logger.Error("ending the copy of a session that ended in the fallback_store; it stays live until it ends here",
				zap.String("session", hash.Short()), zap.Error(err))
		}
	}
}

// endedUser ends the user's sessions in every watcher's store.
func (r *fallbackRelay) endedUser(ctx context.Context, realm, key, value string) {
	for _, w := range r.targets() {
		if _, err := w.relayTarget().DeleteByIdentity(ctx, realm, key, value); err != nil {
			w.logger.Error("ending the copies of a user's sessions that ended in the fallback_store; they stay live until they end here",
				zap.Error(err))
		}
	}
}

// relayStore is a handler's store that tells the relay of its name of the
// sessions that end in it.
type relayStore struct {
	store.Store
	relay *fallbackRelay
}

func (s relayStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	movers := s.relay.moversNow()
	res, err := s.Store.Update(ctx, u)
	if hash, ok := endedBy(u, res, err); ok {
		openTunnels.ended(ctx, hash)
	}
	if s.relay.n.Load() == 0 && movers == nil {
		return res, err
	}
	hash, ok := endedBy(u, res, err)
	if !ok {
		if err == nil && s.relay.n.Load() > 0 && wrote(u, res) {
			s.relay.wrote(ctx, res.Acted, u)
		}
		return res, err
	}
	endInOld(ctx, s.Store, movers, hash)
	if s.relay.n.Load() > 0 {
		s.relay.ended(ctx, hash, u.Realm, u.Now, func(*Handler) (string, string) { return u.Identity, u.Seen })
	}
	return res, err
}

// wrote reports whether u, which left the session where it was, changed
// what it holds.
func wrote(u store.Update, res store.Result) bool {
	return u.HasHash && res.Record != nil && res.Hash == res.Acted &&
		(u.Patch.Changes() || len(u.RestoreFlash) > 0 || len(res.Flash) > 0)
}

// wrote applies u, which wrote to the session under hash, to the
// watchers' copies of it, as it was applied here: per key, over what
// their handlers wrote to the copy since, as one store would have
// applied both. A copy made after the write has it; one of another user
// by now (a login) refuses it (store.ErrStale), as one store would. The
// write decided nothing about rotations here (RenewOn): it was made.
func (r *fallbackRelay) wrote(ctx context.Context, hash session.Hash, u store.Update) {
	u.Hash, u.NewHash, u.RenewOn = hash, nil, nil
	for _, w := range r.targets() {
		_, err := w.base.Update(ctx, u)
		var ruleErr *session.RuleError
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrStale) && !errors.As(err, &ruleErr) {
			w.logger.Error("writing to the copy of a session a write in the fallback_store; the copy goes without it",
				zap.String("session", hash.Short()), zap.Error(err))
		}
	}
}

// endedBy returns the session whose copies the update ends: the one it
// ended or moved to another ID, or the one a logout found gone (a
// handler falling back to this store may have renewed its copy, removing
// it from here first; in one store the logout would follow the renewal,
// and so it does to the copy).
func endedBy(u store.Update, res store.Result, err error) (session.Hash, bool) {
	switch {
	case !u.HasHash:
		return session.Hash{}, false
	case err == nil && (res.Record == nil || res.Hash != res.Acted) && res.Acted != (session.Hash{}):
		return res.Acted, true
	case errors.Is(err, store.ErrNotFound) && u.Patch != nil && u.Patch.Destroy:
		return u.Hash, true
	}
	return session.Hash{}, false
}

func (s relayStore) Delete(ctx context.Context, hash session.Hash) error {
	movers := s.relay.moversNow()
	if s.relay.n.Load() == 0 && movers == nil {
		err := s.Store.Delete(ctx, hash)
		openTunnels.ended(ctx, hash)
		return err
	}
	// Read first: whose it was decides which successors of the copy end.
	rec, lerr := s.Store.Load(store.Fresh(ctx), hash, time.Time{}, store.StoredDeadlines)
	err := s.Store.Delete(ctx, hash)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		endInOld(ctx, s.Store, movers, hash)
	}
	openTunnels.ended(ctx, hash)
	if err == nil && lerr == nil && s.relay.n.Load() > 0 {
		s.relay.ended(ctx, hash, rec.Realm, time.Time{}, func(w *Handler) (string, string) {
			v, _ := rec.IdentityValue(w.identity)
			return w.identity, v
		})
	}
	return err
}

func (s relayStore) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	movers := s.relay.moversNow()
	n, err := s.Store.DeleteByIdentity(ctx, realm, key, value)
	if err != nil {
		return n, err
	}
	openTunnels.endedUser(ctx, realm, key, value)
	endUserInOld(ctx, s.Store, movers, realm, key, value)
	if s.relay.n.Load() > 0 {
		s.relay.endedUser(ctx, realm, key, value)
	}
	return n, err
}

var _ store.Store = relayStore{}
