package caddysession

import (
	"context"
	"slices"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// liveStore is one store of the running config as the admin API acts on
// it: every live handler that names it, and the store wrapped by the
// union of their wrappers.
//
// Handlers that share a store may wrap it differently, and a session in
// it is within reach of each of them: seal_values indexes users under
// keyed hashes of their names (under each handler's index_key);
// on_store_error stale keeps a copy that serves sessions while the store
// is down unless a tombstone says they ended; fallback_store reads
// sessions from an older store and copies them into this one, whatever
// their realm (a realm is checked after the load). So a revocation that
// went through one handler's wrappers, as it did when the admin API
// picked the first handler of the store, missed the sealed index entries,
// the tombstones and the old stores of the others, and the session lived
// on. The admin API acts instead through one chain that holds every
// wrapper any handler of the store has, in the order a handler stacks
// them (fallback stores, then the stale copy, then the index keys),
// rather than through each handler's chain in turn, whose counts would
// overlap: a session one chain deleted from the store is found again, and
// counted again, in the old store by a chain that falls back to it. Each
// wrapper only adds places to look in or forget, so the union is right
// for every realm, and a revocation in one realm reaches what each of its
// handlers needs.
//
// What a handler decides by its settings rather than its wrappers, the
// admin API decides by the handlers of the session's realm: whether a
// session is still live (their timeouts), the identity key a revocation
// by user goes by, the limits an imported session must fit, the handler
// an event is told through.
type liveStore struct {
	name, backend string
	// handlers are the running config's handlers on the store, in
	// provisioning order; at least one.
	handlers []*Handler
	// store is the store within the wrappers of all the handlers.
	store store.Store
	// base is the store itself, which migrate copies into, and fallbacks
	// the distinct fallback stores of the handlers, in provisioning order.
	base      store.Store
	fallbacks []liveFallback
}

// liveFallback is a fallback_store of a handler on a liveStore.
type liveFallback struct {
	name string
	old  store.Store
	// copying is the handler's store.Fallback.Copying: whether the move
	// is still on, held on until done is called.
	copying func() (done func(), ok bool)
}

// liveStores returns the stores of the running config's handlers, sorted
// by name: what the admin API serves.
func liveStores() []*liveStore {
	a := activeApp()
	if a == nil {
		return nil
	}
	byName := map[string][]*Handler{}
	var names []string
	for _, h := range a.Handlers() {
		if _, seen := byName[h.storeName]; !seen {
			names = append(names, h.storeName)
		}
		byName[h.storeName] = append(byName[h.storeName], h)
	}
	slices.Sort(names)
	out := make([]*liveStore, len(names))
	for i, name := range names {
		out[i] = newLiveStore(byName[name])
	}
	return out
}

// newLiveStore wraps the store of handlers, which all name it, in the
// wrappers of every one of them.
func newLiveStore(handlers []*Handler) *liveStore {
	first := handlers[0]
	s := &liveStore{name: first.storeName, backend: first.backend, handlers: handlers, base: first.base}
	st := first.base
	var stale *Handler
	var keys []*session.IndexKey
	for _, h := range handlers {
		if h.fallback != nil && !slices.ContainsFunc(s.fallbacks, func(f liveFallback) bool { return f.name == h.fallbackName }) {
			s.fallbacks = append(s.fallbacks, liveFallback{name: h.fallbackName, old: h.fallback.Old, copying: h.fallback.Copying})
			// Copying too: once the move is over, an admin request in
			// flight must not copy back a session that ended since.
			st = newInstrumented(&store.Fallback{New: st, Old: h.fallback.Old, Identity: h.identity, Copying: h.fallback.Copying}, h.backend)
		}
		if h.stale != nil && stale == nil {
			stale = h // one copy per store name: every stale handler's
		}
		if h.lookupIndex != nil && !slices.ContainsFunc(keys, h.lookupIndex.Equal) {
			keys = append(keys, h.lookupIndex)
		}
	}
	if stale != nil {
		st = &staleStore{Store: st, copy: stale.stale, identity: stale.identity, now: clock.Now}
	} else {
		// No handler of this config keeps a copy, but one of the config
		// a reload is bringing in may have read the session into its
		// own while this request's end was on its way: as the handlers
		// without the policy do, look for it once the store answers.
		st = first.tellsStaleCopy(st)
	}
	if len(keys) > 0 {
		st = sealedIndex{Store: st, keys: keys}
	}
	s.store = st
	return s
}

// opening returns the handlers that would open a session of realm: those
// of the realm, or every one for a session of no realm, stored before
// realms existed, which any realm adopts.
func (s *liveStore) opening(realm string) []*Handler {
	if realm == "" {
		return s.handlers
	}
	return slices.DeleteFunc(slices.Clone(s.handlers), func(h *Handler) bool { return h.realm != realm })
}

// expired reports whether rec has ended for every handler that would open
// it, by their timeouts: a timeout shortened in the config ends a session
// at once, as Load does for requests. A session of a realm that no handler
// serves lives until its stored deadlines.
func (s *liveStore) expired(rec *session.Record, now time.Time) bool {
	opening := s.opening(rec.Realm)
	for _, h := range opening {
		if !h.timeouts.Expired(rec, now) {
			return false
		}
	}
	return len(opening) > 0 || rec.Expired(now)
}

// deadlines are the idle and absolute deadlines that apply to rec: the
// latest that a handler that would open it gives it by its timeouts (it is
// live until the last of them ends it, as expired judges), or the stored
// ones for a session of a realm that no handler serves. The stored ones
// alone would show a session ending later than a timeout shortened in
// the config lets it.
func (s *liveStore) deadlines(rec *session.Record) (idle, absolute time.Time) {
	opening := s.opening(rec.Realm)
	if len(opening) == 0 {
		return rec.IdleDeadline, rec.AbsoluteDeadline
	}
	for _, h := range opening {
		i, a := h.timeouts.Deadlines(rec)
		if i.After(idle) {
			idle = i
		}
		if a.After(absolute) {
			absolute = a
		}
	}
	return idle, absolute
}

// load reads the session under hash, or the forward record there, and
// returns store.ErrNotFound for a session that has ended for every
// handler that would open it.
func (s *liveStore) load(ctx context.Context, hash session.Hash, now time.Time) (*session.Record, error) {
	rec, err := s.store.Load(ctx, hash, now, store.StoredDeadlines)
	if err == nil && !rec.Forwarded() && s.expired(rec, now) {
		return nil, store.ErrNotFound
	}
	return rec, err
}

// follow reads the session under hash as load does or, if it has been
// given a new ID since (a forward record is under hash), the session it
// became, a few hops at most: what a hash a listing showed names, as a
// revocation by hash follows it too. It returns where the session is now.
// A forward record is no session: shown as one, it was a session with no
// keys that ended two minutes after the rotation.
func (s *liveStore) follow(ctx context.Context, hash session.Hash, now time.Time) (session.Hash, *session.Record, error) {
	for hop := 0; hop <= store.MaxHops; hop++ {
		rec, err := s.load(ctx, hash, now)
		if err != nil || !rec.Forwarded() {
			return hash, rec, err
		}
		// The successor is read past any cache: a cached copy from
		// before the rotation would hide it.
		ctx, hash = store.Fresh(ctx), *rec.Successor
	}
	return hash, nil, store.ErrNotFound
}

// teller returns the handler through which an event about sessions of
// realm is told (its identity key reads the session's user): the first
// of the realm, or the store's first when no handler serves it.
func (s *liveStore) teller(realm string) *Handler {
	if hs := s.opening(realm); len(hs) > 0 {
		return hs[0]
	}
	return s.handlers[0]
}

// realms returns the sorted realms of the store's handlers.
func (s *liveStore) realms() []string {
	return distinct(s.handlers, func(h *Handler) string { return h.realm })
}

// identityKeys returns the sorted identity keys (the first renew_on key,
// or identity_key) of the handlers of realm: the keys under which they
// index its sessions.
func (s *liveStore) identityKeys(realm string) []string {
	return distinct(s.opening(realm), func(h *Handler) string { return h.identity })
}

// checkImport checks e as store.CheckImport does, under the limits of the
// handlers that would open it (the store's first, if none would): it must
// fit those of one of them, as a session one of them wrote does. The
// error is the first handler's.
func (s *liveStore) checkImport(e store.Entry, now time.Time) error {
	opening := s.handlers[:1]
	if e.Record != nil && len(s.opening(e.Record.Realm)) > 0 {
		opening = s.opening(e.Record.Realm)
	}
	var first error
	for _, h := range opening {
		err := store.CheckImport(e, now, h.limits)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// widestLimits returns, key by key, the widest limits of the store's
// handlers: a bound that every entry checkImport let through fits, for
// the store's own check of a batch.
func (s *liveStore) widestLimits() session.Limits {
	var l session.Limits
	for _, h := range s.handlers {
		l.Keys = max(l.Keys, h.limits.Keys)
		l.ValueSize = max(l.ValueSize, h.limits.ValueSize)
		l.SessionSize = max(l.SessionSize, h.limits.SessionSize)
	}
	return l
}

// distinct returns the sorted distinct values of field over handlers.
func distinct(handlers []*Handler, field func(*Handler) string) []string {
	var out []string
	for _, h := range handlers {
		if v := field(h); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// storeNames returns the names of stores.
func storeNames(stores []*liveStore) []string {
	names := make([]string, len(stores))
	for i, s := range stores {
		names[i] = s.name
	}
	return names
}
