package caddysession

import (
	"context"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// sharedStore is one config's hold on a store whose resource (a bbolt
// file, a Redis client) lives in a caddy.UsagePool, shared by every config
// that names the same resource, so that a reload neither reopens it nor
// waits for a lock.
//
// Caddy cleans up a replaced config without waiting for its requests to
// finish, so the hold is dropped only when the last store operation under
// way ends. An operation that starts later still uses the resource its
// config names: it borrows it from the pool for its duration, opening it
// again if no config holds it.
type sharedStore struct {
	pool *caddy.UsagePool
	key  string
	open func() (caddy.Destructor, error)
	// wrap makes the store on a pooled resource.
	wrap func(any) (store.Store, error)

	mu      sync.Mutex
	st      store.Store // nil once released
	active  int         // store operations under way
	cleaned bool        // Caddy has cleaned the config up
}

// holdShared takes a hold on the resource under key, opening it if no
// config holds it; loaded reports whether one did.
func holdShared(pool *caddy.UsagePool, key string, open func() (caddy.Destructor, error),
	wrap func(any) (store.Store, error),
) (s *sharedStore, loaded bool, err error) {
	val, loaded, err := pool.LoadOrNew(key, open)
	if err != nil {
		return nil, false, err
	}
	st, err := wrap(val)
	if err != nil {
		_, _ = pool.Delete(key)
		return nil, false, err
	}
	return &sharedStore{pool: pool, key: key, open: open, wrap: wrap, st: st}, loaded, nil
}

// cleanup drops the config's hold, at once or when the last operation
// under way ends.
func (s *sharedStore) cleanup() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cleaned {
		return nil
	}
	s.cleaned = true
	if s.active > 0 {
		return nil
	}
	return s.release()
}

// release drops the hold; s.mu is held.
func (s *sharedStore) release() error {
	s.st = nil
	_, err := s.pool.Delete(s.key)
	return err
}

// acquire returns the store for one operation; done(borrowed) ends it.
// A hold that Caddy has released lends the operation the resource from the
// pool (borrowed), opening it again if no config holds it.
func (s *sharedStore) acquire() (st store.Store, borrowed bool, err error) {
	s.mu.Lock()
	if s.st != nil {
		s.active++
		st := s.st
		s.mu.Unlock()
		return st, false, nil
	}
	s.mu.Unlock()
	val, _, err := s.pool.LoadOrNew(s.key, s.open)
	if err != nil {
		return nil, false, err
	}
	if st, err = s.wrap(val); err != nil {
		_, _ = s.pool.Delete(s.key)
		return nil, false, err
	}
	return st, true, nil
}

// done ends an operation that acquire started.
func (s *sharedStore) done(borrowed bool) {
	if borrowed {
		_, _ = s.pool.Delete(s.key)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.cleaned && s.active == 0 && s.st != nil {
		_ = s.release()
	}
}

// The store.Store methods each run one operation on the acquired store.
// They are written out, not passed as closures, to keep the request path
// free of allocations.

func (s *sharedStore) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.done(borrowed)
	return st.Load(ctx, hash, now, t)
}

func (s *sharedStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return store.Result{}, err
	}
	defer s.done(borrowed)
	return st.Update(ctx, u)
}

func (s *sharedStore) Delete(ctx context.Context, hash session.Hash) error {
	st, borrowed, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.done(borrowed)
	return st.Delete(ctx, hash)
}

func (s *sharedStore) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.done(borrowed)
	return st.DeleteByIdentity(ctx, realm, key, value)
}

func (s *sharedStore) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.done(borrowed)
	return st.ListByIdentity(ctx, realm, key, value, now)
}

func (s *sharedStore) List(ctx context.Context, cursor string, limit int, now time.Time) ([]store.Entry, string, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return nil, "", err
	}
	defer s.done(borrowed)
	return st.List(ctx, cursor, limit, now)
}

func (s *sharedStore) Count(ctx context.Context, now time.Time) (int, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return 0, err
	}
	defer s.done(borrowed)
	return st.Count(ctx, now)
}

// Close does nothing: the pool closes the resource when the last config
// that names it lets go.
func (s *sharedStore) Close() error { return nil }

var _ store.Store = (*sharedStore)(nil)
