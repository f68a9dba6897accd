package caddysession

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

func init() {
	caddy.RegisterModule(BoltStore{})
}

// StoreProvider is what a module in the namespace
// `http.handlers.session.stores` gives the session handler.
type StoreProvider interface {
	SessionStore() store.Store
}

// BoltStore keeps sessions in an embedded bbolt database file: no setup,
// one machine. The open database is shared by every config that names the
// same file, so `caddy reload` neither blocks on bbolt's file lock nor
// drops a session.
type BoltStore struct {
	// The database file. Default: `sessions.db` in the `session` folder of
	// Caddy's data directory.
	Path string `json:"path,omitempty"`

	// How long to wait for the file lock when another process holds it
	// (another Caddy, or `caddy validate` run beside a live Caddy) before
	// failing. Default: 5s.
	LockTimeout caddy.Duration `json:"lock_timeout,omitempty"`

	// Whether to skip fsync after each commit. Faster, but a crash may lose
	// the last sessions written. Default: false.
	NoSync bool `json:"no_sync,omitempty"`

	key string
	ref *boltRef
}

// boltRef is one config's reference to a database in boltPool.
type boltRef struct {
	key  string
	open func() (caddy.Destructor, error) // opens the file for boltPool

	mu      sync.Mutex
	db      *bolt.Store // nil once released
	active  int         // store operations under way
	cleaned bool        // Caddy has cleaned the config up
}

// CaddyModule returns the Caddy module information.
func (BoltStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.bolt",
		New: func() caddy.Module { return new(BoltStore) },
	}
}

// boltPool holds the open databases by absolute path, across configs.
var boltPool = caddy.NewUsagePool()

type boltDestructor struct{ *bolt.Store }

func (d boltDestructor) Destruct() error { return d.Close() }

// Provision opens the database or takes a reference to the one already
// open for the same file.
func (b *BoltStore) Provision(ctx caddy.Context) error {
	path := b.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "session", "sessions.db")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("bolt store path %q: %v", b.Path, err)
	}
	b.key = path
	logger := ctx.Logger()
	open := func() (caddy.Destructor, error) {
		db, err := bolt.Open(path, bolt.Options{
			LockTimeout: timeoutOr(b.LockTimeout),
			NoSync:      b.NoSync,
			Now:         clock.Now,
			OnSweep: func(removed int, err error) {
				if err != nil {
					logger.Error("sweeping expired sessions", zap.String("path", path), zap.Error(err))
					return
				}
				sessionMetrics.expired.WithLabelValues("bolt").Add(float64(removed))
				logger.Debug("swept expired sessions", zap.String("path", path), zap.Int("removed", removed))
			},
		})
		if err != nil {
			return nil, err
		}
		return boltDestructor{db}, nil
	}
	val, loaded, err := boltPool.LoadOrNew(path, open)
	if err != nil {
		return err
	}
	b.ref = &boltRef{key: path, open: open, db: val.(boltDestructor).Store}
	ctx.Logger().Debug("session database ready", zap.String("path", path), zap.Bool("shared", loaded))
	return nil
}

func timeoutOr(d caddy.Duration) time.Duration {
	return durationOr(d, bolt.DefaultLockTimeout)
}

// StoreName names the store in the admin API.
func (b *BoltStore) StoreName() string { return "bolt:" + b.key }

// SessionStore returns the shared database, as this config's handlers
// use it.
func (b *BoltStore) SessionStore() store.Store { return boltHandle{b.ref} }

// Cleanup drops this config's reference; the last one closes the file.
// Caddy cleans up a replaced config without waiting for its requests to
// finish, so a reference in use by a store operation is dropped when the
// operation ends.
func (b *BoltStore) Cleanup() error {
	if b.ref == nil {
		return nil
	}
	r := b.ref
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cleaned {
		return nil
	}
	r.cleaned = true
	if r.active > 0 {
		return nil
	}
	return r.release()
}

// release drops the reference; r.mu is held.
func (r *boltRef) release() error {
	r.db = nil
	_, err := boltPool.Delete(r.key)
	return err
}

// acquire returns the database for one store operation, and the function
// to call when it is over. A request of a config that Caddy has already
// cleaned up (a reload does not wait for requests in flight) still uses
// the file its config names: it borrows the database from the pool for
// the one operation, opening the file again if no config holds it.
func (r *boltRef) acquire() (*bolt.Store, func(), error) {
	r.mu.Lock()
	if r.db != nil {
		r.active++
		db := r.db
		r.mu.Unlock()
		return db, r.done, nil
	}
	r.mu.Unlock()
	val, _, err := boltPool.LoadOrNew(r.key, r.open)
	if err != nil {
		return nil, nil, err
	}
	return val.(boltDestructor).Store, func() { _, _ = boltPool.Delete(r.key) }, nil
}

// done ends an operation that acquire started on the reference.
func (r *boltRef) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active--
	if r.cleaned && r.active == 0 && r.db != nil {
		_ = r.release()
	}
}

// boltHandle is the store.Store of one config: each operation runs on the
// database acquire gives it.
type boltHandle struct{ r *boltRef }

// use runs fn on the database of one operation.
func use[T any](r *boltRef, fn func(*bolt.Store) (T, error)) (T, error) {
	db, done, err := r.acquire()
	if err != nil {
		var zero T
		return zero, err
	}
	defer done()
	return fn(db)
}

func (h boltHandle) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	return use(h.r, func(db *bolt.Store) (*session.Record, error) { return db.Load(ctx, hash, now, t) })
}

func (h boltHandle) Update(ctx context.Context, u store.Update) (*session.Record, error) {
	return use(h.r, func(db *bolt.Store) (*session.Record, error) { return db.Update(ctx, u) })
}

func (h boltHandle) Delete(ctx context.Context, hash session.Hash) error {
	_, err := use(h.r, func(db *bolt.Store) (struct{}, error) { return struct{}{}, db.Delete(ctx, hash) })
	return err
}

func (h boltHandle) DeleteByIdentity(ctx context.Context, key, value string) (int, error) {
	return use(h.r, func(db *bolt.Store) (int, error) { return db.DeleteByIdentity(ctx, key, value) })
}

func (h boltHandle) List(ctx context.Context, cursor string, limit int, now time.Time) ([]store.Entry, string, error) {
	type page struct {
		entries []store.Entry
		next    string
	}
	p, err := use(h.r, func(db *bolt.Store) (page, error) {
		entries, next, err := db.List(ctx, cursor, limit, now)
		return page{entries, next}, err
	})
	return p.entries, p.next, err
}

func (h boltHandle) Count(ctx context.Context, now time.Time) (int, error) {
	return use(h.r, func(db *bolt.Store) (int, error) { return db.Count(ctx, now) })
}

// Close does nothing: the pool closes the file when the last config that
// names it is cleaned up.
func (h boltHandle) Close() error { return nil }

// Interface guards
var (
	_ caddy.Provisioner  = (*BoltStore)(nil)
	_ caddy.CleanerUpper = (*BoltStore)(nil)
	_ StoreProvider      = (*BoltStore)(nil)
)
