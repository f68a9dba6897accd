package caddysession

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

func init() {
	caddy.RegisterModule(BoltStore{})
}

// StoreProvider is what a module in the namespace
// `http.handlers.session.stores` gives the session handler.
type StoreProvider interface {
	// SessionStore returns the store the handler uses.
	SessionStore() store.Store
	// StoreName names the store in the admin API and its logs: where its
	// data is, without credentials, so that two handlers on the same data
	// give the same name and handlers on different data never do.
	StoreName() string
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
	ref *sharedStore
	db  boltDestructor // the database ref holds, for its no_sync
	// voted is whether NoSync is counted in db.sync, until Cleanup.
	voted bool
}

// CaddyModule returns the Caddy module information.
func (BoltStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.bolt",
		New: func() caddy.Module { return new(BoltStore) },
	}
}

// boltPool holds the open databases by file (boltFile), across configs.
var boltPool = caddy.NewUsagePool()

// boltDestructor is an open database in boltPool, with what the configs
// that hold it ask of its fsync.
type boltDestructor struct {
	*bolt.Store
	sync *syncVotes
}

func (d boltDestructor) Destruct() error { return d.Close() }

// syncVotes counts the configs that hold a database with no_sync and
// without. The file is opened once, with the options of the first, but
// each commit is synced unless every holder says no_sync: a reload that
// removes no_sync makes commits durable again at once, and one that adds
// it takes effect when the last config without it is gone.
type syncVotes struct {
	mu           sync.Mutex
	sync, noSync int
}

// vote adds (by +1) or takes back (by -1) one holder's no_sync, and sets
// the database's accordingly while anyone holds it.
func (v *syncVotes) vote(db *bolt.Store, noSync bool, by int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if noSync {
		v.noSync += by
	} else {
		v.sync += by
	}
	if v.sync+v.noSync == 0 {
		return nil // the file is about to close
	}
	if want := v.sync == 0; db.NoSync() != want {
		return db.SetNoSync(want)
	}
	return nil
}

// Provision opens the database or takes a reference to the one already
// open for the same file.
func (b *BoltStore) Provision(ctx caddy.Context) error {
	if b.LockTimeout < 0 {
		// Only JSON gives one; it was read as left out (checkNegative).
		return fmt.Errorf("bolt store: lock_timeout (%s) is negative: give a positive duration, or leave it out for the default", time.Duration(b.LockTimeout))
	}
	path := b.Path
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), "session", "sessions.db")
	}
	path, err := boltFile(path)
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
			OnTouchError: func(err error) {
				logger.Error("writing deferred session touches; they stay pending for the next commit",
					zap.String("path", path), zap.Error(err))
			},
			OnSweep: func(removed int, err error) {
				if err != nil {
					logger.Error("sweeping expired sessions", zap.String("path", path), zap.Error(err))
					return
				}
				sessionMetrics.expired.WithLabelValues("bolt").Add(float64(removed))
				if ce := logger.Check(zap.DebugLevel, "swept expired sessions"); ce != nil {
					ce.Write(zap.String("path", path), zap.Int("removed", removed))
				}
			},
		})
		if err != nil {
			return nil, err
		}
		if f := testhook.BoltOpened.Load(); f != nil {
			(*f)(db.SweepDue)
		}
		return boltDestructor{Store: db, sync: new(syncVotes)}, nil
	}
	// wrap also runs for an operation that outlives its config and
	// borrows the database (see sharedStore): only the first call, in
	// holdShared, tells this config which one it holds.
	var first sync.Once
	var db boltDestructor
	ref, loaded, err := holdShared(boltPool, path, open, func(d any) (store.Store, error) {
		first.Do(func() { db = d.(boltDestructor) })
		return d.(boltDestructor).Store, nil
	})
	if err != nil {
		return err
	}
	b.ref, b.db, b.voted = ref, db, true
	if err := db.sync.vote(db.Store, b.NoSync, +1); err != nil {
		logger.Error("setting no_sync on the shared session database; it keeps its setting", zap.String("path", path),
			zap.Bool("no_sync", db.NoSync()), zap.Error(err))
	}
	if ce := logger.Check(zap.DebugLevel, "session database ready"); ce != nil {
		ce.Write(zap.String("path", path), zap.Bool("shared", loaded))
	}
	return nil
}

// boltFile returns the file path names, absolute and with its symlinks
// resolved, which keys the pool and names the store. Two spellings of one
// file (a symlinked directory, a symlink to the file) must find the
// database open already: a second open in the same process waits for the
// bbolt lock the process itself holds, so a reload from one spelling to
// the other would fail after lock_timeout, and two handlers on one file
// would get two names, two stale copies and two live counts. Where the
// file or its directories do not exist yet, the longest part of the path
// that does is resolved, since that is where the first open creates them.
func boltFile(path string) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for dir := path; ; dir = filepath.Dir(dir) {
		resolved, err := filepath.EvalSymlinks(dir)
		if err == nil {
			return filepath.Join(resolved, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			return "", err
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

func timeoutOr(d caddy.Duration) time.Duration {
	return durationOr(d, bolt.DefaultLockTimeout)
}

// StoreName names the store in the admin API: `bolt:` and the file's
// absolute path.
func (b *BoltStore) StoreName() string { return "bolt:" + b.key }

// SessionStore returns the shared database, as this config's handlers
// use it.
func (b *BoltStore) SessionStore() store.Store { return b.ref }

// Cleanup lets go of the database; the last config to let go closes the
// file.
func (b *BoltStore) Cleanup() error {
	if b.ref == nil {
		return nil
	}
	// A commit that fails here leaves the setting as it was; the next
	// config's vote sets it again.
	if b.voted {
		b.voted = false
		_ = b.db.sync.vote(b.db.Store, b.NoSync, -1)
	}
	return b.ref.cleanup()
}

// Interface guards
var (
	_ caddy.Provisioner  = (*BoltStore)(nil)
	_ caddy.CleanerUpper = (*BoltStore)(nil)
	_ StoreProvider      = (*BoltStore)(nil)
)
