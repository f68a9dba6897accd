// Package bolt is a store.Store in a single bbolt file: sessions survive a
// restart of Caddy with nothing else to run. Only one process can open the
// file at a time.
//
// The file holds three buckets:
//
//   - sessions: the 32-byte session hash → the encoded record (codec.go),
//     a session or a forward record (a session's old hash after a
//     rotation, see store.Decide);
//   - expiry: the record's ExpiresAt as 8-byte big-endian unix nanoseconds,
//     then the first 16 bytes of the hash, then 'f' for a forward record
//     → nothing. Sorted by time, so the sweeper reads the expired records
//     from the start instead of scanning them all, and Count counts the
//     sessions by the length of the keys;
//   - identity: a digest of the identity key name and its value, then the
//     first 16 bytes of the hash → nothing, so DeleteByIdentity is a
//     prefix scan. Forward records have no entry; the realm is in the
//     record, not in the key, so the index is the same for every realm.
//
// An index entry leads to the records whose hash starts with its prefix,
// and the record says whose session it is and when it expires; index.go
// has the details, and the full-hash form a key takes when its short form
// is taken. Every write changes the record and both indexes in one
// transaction.
//
// Files of the previous layouts open as they are, with no migration:
// records of codec version 1 (no realms) read as sessions of no realm,
// and records of versions 1 and 2 keep their index entries in the layout
// they were written with (the whole hash, the identity value in clear)
// until their next write rewrites them in the current one.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Defaults of Options.
const (
	DefaultLockTimeout   = 5 * time.Second
	DefaultSweepInterval = time.Minute
)

// sweepBatch is how many expired records one sweep transaction removes at
// most. The sweep holds the single write lock of the file; small batches
// let requests' updates in between.
const sweepBatch = 256

// Options configure a Store. The zero value is the default.
type Options struct {
	// LockTimeout is how long Open waits for the file's lock, which another
	// process (usually another running Caddy) may hold. Default 5s.
	LockTimeout time.Duration
	// SweepInterval is how often expired records are removed in the
	// background. Zero means the default of a minute; a negative value
	// runs no sweeper, leaving Sweep to the caller.
	SweepInterval time.Duration
	// Now is the sweeper's clock. Default time.Now.
	Now func() time.Time
	// NoSync skips the fsync after each commit: faster, but a power loss
	// or a crash of the machine can lose recent writes or corrupt the file.
	// Leave it off except in tests.
	NoSync bool
	// OnSweep, if set, is called after each background sweep with how many
	// records it removed and its error, for logs and metrics. It runs on
	// the sweeper goroutine.
	OnSweep func(removed int, err error)
	// TouchDelay is how long a touch (a keep-alive write) may wait in
	// memory for a commit to be written with (touch.go). Zero means
	// DefaultTouchDelay; a negative value writes every touch at once.
	TouchDelay time.Duration
	// OnTouchError, if set, is called when a commit made for deferred
	// touches fails; they stay pending and go with the next commit.
	OnTouchError func(err error)
	// CacheRecords is how many recently read records are kept decoded in
	// memory (see cache.go). Zero means DefaultCacheRecords; a negative
	// value keeps none.
	CacheRecords int
}

// Store is a store.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	db      *bbolt.DB
	path    string
	now     func() time.Time
	onSweep func(int, error)

	// file is the file opened, which every commit checks is still the
	// one at path (see checkFile).
	file os.FileInfo

	commits committer    // the queue of writers; see commit.go
	cache   *recordCache // nil when off; see cache.go
	touches touchQueue   // touches not written yet; see touch.go

	onTouchError func(error)

	// noSync is db.NoSync as last set, which is read by the committing
	// writer only: NoSync reads it here, without the write lock.
	noSync atomic.Bool

	// beforeWrite, a test's hook, is called inside the transaction of an
	// Update, after store.Decide and before the writes it decided, and
	// of a DeleteByIdentity, before each session it removes.
	beforeWrite func()

	stop      chan struct{} // closed by Close to end the sweeper
	done      chan struct{} // closed by the sweeper when it has ended
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Bucket names.
var (
	bucketSessions = []byte("sessions")
	bucketExpiry   = []byte("expiry")
	bucketIdentity = []byte("identity")
)

// Open opens the store in the file at path, creating the file (mode 0600)
// and its directory (mode 0700) if needed: records hold what the
// application keeps about its users, so only Caddy's user may read them.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("the session store needs a file path")
	}
	lockTimeout := opts.LockTimeout
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of session store %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		// Without a timeout bbolt waits for the lock forever, and Caddy
		// would hang at startup with no word of why.
		Timeout: lockTimeout,
		NoSync:  opts.NoSync,
		// The map freelist stays fast as the file grows and frees pages
		// in large numbers, which is what a session store does.
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("session store %s is locked by another process, such as a running caddy: stop it or give this one another file (waited %s)", path, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening session store %s: %w", path, err)
	}
	// bbolt holds its lock on the file at path, which no other Caddy can
	// replace meanwhile.
	file, err := os.Stat(path)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening session store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketSessions, bucketExpiry, bucketIdentity} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing session store %s: %w", path, err)
	}
	cacheSize := opts.CacheRecords
	if cacheSize == 0 {
		cacheSize = DefaultCacheRecords
	}
	s := &Store{db: db, path: path, file: file, now: opts.Now, onSweep: opts.OnSweep, cache: newRecordCache(cacheSize), onTouchError: opts.OnTouchError}
	s.noSync.Store(opts.NoSync)
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opts.TouchDelay == 0:
		s.touches.delay = DefaultTouchDelay
	case opts.TouchDelay > 0:
		s.touches.delay = opts.TouchDelay
	}
	s.touches.flush = s.flushLater
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.sweepLoop(interval)
	}
	return s, nil
}

// Path returns the file the store is in.
func (s *Store) Path() string { return s.path }

// NoSync reports whether commits skip the fsync (Options.NoSync, or the
// last SetNoSync).
func (s *Store) NoSync() bool { return s.noSync.Load() }

// SetNoSync turns the fsync after each commit off or on from the next
// commit, for the holders of an open file that change their mind (a
// reload of Caddy's config). bbolt reads the setting in the commit, under
// the file's write lock, so it is changed by a commit of its own.
func (s *Store) SetNoSync(noSync bool) error {
	return s.write(func(*bbolt.Tx) error {
		s.db.NoSync = noSync
		s.noSync.Store(noSync)
		return nil
	})
}

// Close stops the sweeper, waiting for a sweep under way to finish its
// batch, writes the touches still pending, and closes the file. Calling it
// again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.touches.close()
		flushErr := s.flushTouches()
		s.closeErr = errors.Join(flushErr, s.db.Close())
	})
	return s.closeErr
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := s.current(hash)
	if err != nil {
		return nil, err
	}
	if expired(rec, now, timeouts) {
		// An expired record is left for an update or the sweeper to
		// remove: Load takes no write lock.
		return nil, store.ErrNotFound
	}
	return rec, nil
}

// current returns the caller's own copy of the record under hash, expired
// or not, with its pending touch (touch.go) shown; ErrNotFound when there
// is none.
func (s *Store) current(hash session.Hash) (*session.Record, error) {
	rec := s.cache.get(hash)
	if rec == nil {
		gen := s.cache.generation()
		var err error
		if rec, err = s.read(hash); err != nil {
			return nil, err
		}
		s.cache.fill(hash, rec, gen)
	}
	// The cached record is shared: the caller gets its own.
	out := rec.Clone()
	s.touches.overlay(hash, out)
	return out, nil
}

// expired judges a session by the timeouts as well as its deadlines, and
// a forward record, which no timeout set, by its deadlines alone.
func expired(rec *session.Record, now time.Time, timeouts session.Timeouts) bool {
	if rec.Forwarded() {
		return rec.Expired(now)
	}
	return timeouts.Expired(rec, now)
}

// read decodes the record under hash from the file.
func (s *Store) read(hash session.Hash) (*session.Record, error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	v := tx.Bucket(bucketSessions).Get(hash[:])
	if v == nil {
		return nil, store.ErrNotFound
	}
	// decode copies: v is only valid inside the transaction.
	rec, _, err := decode(v)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", hash.Short(), err)
	}
	return rec, nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, u store.Update) (store.Result, error) {
	if err := ctx.Err(); err != nil {
		return store.Result{}, err
	}
	if deferrable(u) {
		if res, err, ok := s.deferTouch(u); ok {
			return res, err
		}
	}
	var o store.Outcome
	err := s.write(func(tx *bbolt.Tx) error {
		var err error
		o, err = update(s.buckets(tx), u)
		return err
	})
	if err != nil {
		return store.Result{}, err
	}
	return o.Result, o.Err
}

// update reads what store.Decide needs in tx, following forward records,
// and executes the outcome. The outcome's own error (ErrNotFound, a
// RuleError…) is not returned as the transaction's, so that the
// transaction still commits what the outcome writes (the removal of an
// expired record) and is not run again alone by the group commit; an
// error of the file rolls back everything the update did.
func update(b txBuckets, u store.Update) (store.Outcome, error) {
	if !u.HasHash {
		o := store.Decide(u, session.Hash{}, nil, 0)
		return o, b.execute(o)
	}
	at := u.Hash
	for hop := 0; ; hop++ {
		rec, _, err := b.get(at)
		if err != nil {
			return store.Outcome{}, err
		}
		o := store.Decide(u, at, rec, hop)
		if o.Next == nil {
			if b.beforeWrite != nil && o.Writes() {
				b.beforeWrite()
			}
			return o, b.execute(o)
		}
		at, u = *o.Next, o.Onward(u) // Decide bounds the hops
	}
}

// execute makes the writes of o. Removing a record first clears its index
// entries, whatever they were.
func (b txBuckets) execute(o store.Outcome) error {
	if o.Remove || o.InPlace {
		if err := b.remove(o.At); err != nil {
			return err
		}
	}
	if o.Forward != nil {
		if err := b.put(o.At, o.Forward, ""); err != nil {
			return err
		}
	}
	if o.Write == nil {
		return nil
	}
	if !o.InPlace {
		// A record already under the new hash is replaced; its index
		// entries must go with it.
		if err := b.remove(o.WriteAt); err != nil {
			return err
		}
	}
	return b.put(o.WriteAt, o.Write, o.Identity)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, hash session.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var found bool
	err := s.write(func(tx *bbolt.Tx) error {
		b := s.buckets(tx)
		// Not an error inside the transaction: that would roll back the
		// writes committed with it (commit.go). A forward record is no
		// session; it stays until it expires.
		v := b.sessions.Get(hash[:])
		found = v != nil && !isForward(v)
		if !found {
			return nil
		}
		return b.remove(hash)
	})
	if err == nil && !found {
		return store.ErrNotFound
	}
	return err
}

// DeleteByIdentity implements store.Store.
func (s *Store) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if key == "" {
		// Nothing is indexed under an empty identity key.
		return 0, nil
	}
	var n int
	err := s.write(func(tx *bbolt.Tx) error {
		n = 0
		b := s.buckets(tx)
		for _, prefix := range identityPrefixes(key, value) {
			removed, err := b.revoke(prefix, realm, key, value)
			n += removed
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// revoke removes the sessions of realm (or of none) whose identity key is
// key with value, found by the identity index entries that start with
// prefix, and returns how many it removed.
func (b txBuckets) revoke(prefix []byte, realm, key, value string) (int, error) {
	// bbolt cursors do not survive deletes, so collect first.
	var entries [][]byte
	c := b.identity.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		entries = append(entries, bytes.Clone(k))
	}
	n := 0
	for _, k := range entries {
		suffix := k[len(prefix):]
		if !isEntrySuffix(suffix) {
			continue // not an entry of a known layout; leave it to Check
		}
		claimed := false
		for _, hash := range hashesUnder(b.sessions, suffix) {
			switch owner(b.sessions.Get(hash[:]), realm, key, value) {
			case ownedHere:
				if b.beforeWrite != nil {
					b.beforeWrite()
				}
				// Its removal deletes its entry.
				if err := b.remove(hash); err != nil {
					return n, err
				}
				n++
			default:
				// Another realm's session keeps its entry; so does one
				// whose identity only shares the digest.
				claimed = claimed || b.claimsIdentityEntry(hash, k)
			}
		}
		if !claimed {
			// Gone with its record, or stale.
			if err := b.identity.Delete(k); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Whose session an identity index entry leads to.
const (
	notOwned       = iota // a stale entry: no record, or not of the identity
	ownedHere             // of the identity, in the realm or in none
	ownedElsewhere        // of the identity, in another realm
)

// owner tells whether the encoded record v belongs to the identity key
// with value, and in which realm. Only a record that still does is removed
// for an index entry: the index is kept in step with the records, but it
// is the record that says whose session it is. A record too corrupt to
// tell is counted as owned, since it is listed under the identity and a
// "log out everywhere" must not leave it behind.
func owner(v []byte, realm, key, value string) int {
	if v == nil {
		return notOwned
	}
	rec, identity, err := decode(v)
	if err != nil {
		return ownedHere
	}
	got, ok := rec.IndexedIdentity(key)
	switch {
	case identity != key || !ok || got != value || rec.Forwarded():
		return notOwned
	case rec.Realm != "" && rec.Realm != realm:
		return ownedElsewhere
	}
	return ownedHere
}

// List implements store.Store. The cursor is the hex hash of the last
// session of the previous page.
func (s *Store) List(ctx context.Context, cursor string, limit int, now time.Time) ([]store.Entry, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("a session list needs a positive limit, not %d", limit)
	}
	// Deadlines are read from the file: touches still in memory go first.
	if err := s.flushTouches(); err != nil {
		return nil, "", err
	}
	var after session.Hash
	if cursor != "" {
		h, err := session.ParseHash(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("%w %q: pass back the cursor a list returned", store.ErrBadCursor, cursor)
		}
		after = h
	}
	var (
		entries []store.Entry
		next    string
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		entries, next = nil, ""
		c := tx.Bucket(bucketSessions).Cursor()
		var k, v []byte
		if cursor == "" {
			k, v = c.First()
		} else {
			k, v = c.Seek(after[:])
			if bytes.Equal(k, after[:]) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(k) != len(session.Hash{}) || isForward(v) {
				continue
			}
			if len(entries) == limit {
				// Another live session follows: there is a next page.
				expires, err := expiresAtOf(v)
				if err != nil || !now.Before(expires) {
					continue
				}
				next = entries[len(entries)-1].Hash.String()
				return nil
			}
			rec, identity, err := decode(v)
			if err != nil {
				return fmt.Errorf("session %x: %w", k[:8], err)
			}
			if rec.Expired(now) {
				continue
			}
			e := store.Entry{Record: rec, Identity: identity}
			copy(e.Hash[:], k)
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return entries, next, nil
}

// Count implements store.Store. It counts the expiry index past now, which
// reads keys only: the entries of forward records are told apart by their
// length (index.go).
func (s *Store) Count(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Deadlines are read from the index: touches still in memory go first.
	if err := s.flushTouches(); err != nil {
		return 0, err
	}
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		n = 0
		nano := unixNano(now)
		if nano == math.MaxInt64 {
			return nil
		}
		c := tx.Bucket(bucketExpiry).Cursor()
		// Live means ExpiresAt after now: keys from now+1ns on.
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, indexNano(nano+1))); k != nil; k, _ = c.Next() {
			if isSessionExpiryKey(k) {
				n++
			}
		}
		return nil
	})
	return n, err
}

// Sweep removes the records that have expired at now, by their stored
// deadlines, and returns how many sessions it removed (forward records go
// too, uncounted: they are no sessions). It reads the expiry index
// from its start and stops at the first live entry, in transactions of a
// bounded number of records so that updates are not held up for long.
func (s *Store) Sweep(now time.Time) (int, error) {
	return s.sweep(now, nil)
}

// sweep is Sweep, stopping between batches once stop is closed.
func (s *Store) sweep(now time.Time, stop <-chan struct{}) (int, error) {
	total := 0
	for {
		var removed, seen int
		err := s.write(func(tx *bbolt.Tx) error {
			var err error
			removed, seen, err = sweepBatchTx(s.buckets(tx), now)
			return err
		})
		total += removed
		if err != nil {
			return total, fmt.Errorf("sweeping session store %s: %w", s.path, err)
		}
		if seen < sweepBatch {
			return total, nil
		}
		select {
		case <-stop:
			return total, nil
		default:
		}
	}
}

// sweepBatchTx removes up to sweepBatch expired records. It returns how
// many sessions it removed and how many index entries it handled: fewer
// than sweepBatch means there are no more expired ones.
func sweepBatchTx(b txBuckets, now time.Time) (removed, seen int, err error) {
	limit := indexNano(unixNano(now))
	var keys [][]byte
	c := b.expiry.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < sweepBatch; k, _ = c.Next() {
		if len(k) < 8 || binary.BigEndian.Uint64(k) > limit {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		n, err := sweepEntry(b, k, now)
		removed += n
		if err != nil {
			return removed, len(keys), err
		}
	}
	return removed, len(keys), nil
}

// sweepEntry removes the expired records that the expired expiry index
// entry k leads to, then the entry, and returns how many sessions it
// removed. The record has the last word, in case the entry is stale.
func sweepEntry(b txBuckets, k []byte, now time.Time) (removed int, err error) {
	if suffix := expiryEntrySuffix(k); suffix != nil {
		for _, hash := range hashesUnder(b.sessions, suffix) {
			rec, _, derr := decode(b.sessions.Get(hash[:]))
			if derr == nil && !rec.Expired(now) {
				continue
			}
			if err := b.remove(hash); err != nil {
				return removed, err
			}
			if derr != nil || !rec.Forwarded() {
				removed++
			}
		}
	}
	// Gone with its record, or stale: either way it goes.
	return removed, b.expiry.Delete(k)
}

// SweepDue runs one sweep as the background sweeper does at each tick, at
// the store's clock (Options.Now), and returns how many sessions it
// removed: those whose deadline passed store.ExpiryGrace ago or more,
// which no request in flight can still find live. Those that expired
// since are invisible already, and left for the requests in flight
// across their idle deadline, which keep them.
func (s *Store) SweepDue() (int, error) { return s.sweepDue(s.now(), nil) }

// sweepDue is SweepDue at now, stopping between batches once stop is
// closed.
func (s *Store) sweepDue(now time.Time, stop <-chan struct{}) (int, error) {
	return s.sweep(now.Add(-store.ExpiryGrace), stop)
}

// sweepLoop sweeps every interval until Close.
func (s *Store) sweepLoop(interval time.Duration) {
	defer close(s.done)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			n, err := s.sweepDue(s.now(), s.stop)
			if s.onSweep != nil {
				s.onSweep(n, err)
			}
		}
	}
}

// txBuckets are the store's buckets in one transaction.
type txBuckets struct {
	sessions, expiry, identity *bbolt.Bucket
	// When set, a record put or removed is forgotten by the cache once the
	// transaction commits.
	tx          *bbolt.Tx
	cache       *recordCache
	beforeWrite func() // the Store's, or nil
}

func buckets(tx *bbolt.Tx) txBuckets {
	b := txBuckets{
		sessions: tx.Bucket(bucketSessions),
		expiry:   tx.Bucket(bucketExpiry),
		identity: tx.Bucket(bucketIdentity),
	}
	if tx.Writable() {
		// bbolt splits a full page in two halves, for keys that come in
		// any order; the expiry index's come in the order of time, so
		// the left half would stay half empty. bbolt keeps no fill in
		// the file: every transaction sets it.
		b.expiry.FillPercent = expiryFillPercent
	}
	return b
}

// expiryFillPercent leaves a little room in a page for the deadlines that
// commit out of order (a group commit's writers, clocks of other CPUs).
// Keys that come in random order would leave the pages it splits nearly
// empty: Import, whose keys do, keeps bbolt's default.
const expiryFillPercent = 0.95

// buckets are the store's buckets in tx, for writing: every record the
// transaction changes leaves the cache when it commits.
func (s *Store) buckets(tx *bbolt.Tx) txBuckets {
	b := buckets(tx)
	b.tx, b.cache, b.beforeWrite = tx, s.cache, s.beforeWrite
	return b
}

// get returns the record under hash and the identity key name it is
// indexed under, or a nil record if there is none.
func (b txBuckets) get(hash session.Hash) (*session.Record, string, error) {
	v := b.sessions.Get(hash[:])
	if v == nil {
		return nil, "", nil
	}
	rec, identity, err := decode(v)
	if err != nil {
		return nil, "", fmt.Errorf("session %s: %w; delete it to go on", hash.Short(), err)
	}
	return rec, identity, nil
}

// put stores rec under hash with its index entries (index.go). Any record
// already under hash must have been removed first.
func (b txBuckets) put(hash session.Hash, rec *session.Record, identity string) error {
	b.cache.forgetOnCommit(b.tx, hash)
	if err := b.sessions.Put(hash[:], encode(rec, identity)); err != nil {
		return err
	}
	if err := expiryKeys(rec, hash, false).put(b.expiry); err != nil {
		return err
	}
	if keys, ok := identityKeys(rec, identity, hash, false); ok {
		return keys.put(b.identity)
	}
	return nil
}

// remove deletes the record under hash, if any, with its index entries, in
// the layout its version was written with. A record too corrupt to decode
// is deleted alone; its stale index entries are dropped when the sweeper
// or DeleteByIdentity meets them.
func (b txBuckets) remove(hash session.Hash) error {
	v := b.sessions.Get(hash[:])
	if v == nil {
		return nil
	}
	b.cache.forgetOnCommit(b.tx, hash)
	rec, identity, err := decode(v)
	if err == nil {
		old := oldLayout(v)
		if err := expiryKeys(rec, hash, old).delete(b.expiry); err != nil {
			return err
		}
		if keys, ok := identityKeys(rec, identity, hash, old); ok {
			if err := keys.delete(b.identity); err != nil {
				return err
			}
		}
	}
	return b.sessions.Delete(hash[:])
}

// claimsIdentityEntry reports whether the record under hash has the
// identity index entry k.
func (b txBuckets) claimsIdentityEntry(hash session.Hash, k []byte) bool {
	v := b.sessions.Get(hash[:])
	if v == nil {
		return false
	}
	rec, identity, err := decode(v)
	if err != nil {
		return false
	}
	keys, ok := identityKeys(rec, identity, hash, oldLayout(v))
	return ok && bytes.Equal(keys.in(b.identity), k)
}

// indexNano maps unix nanoseconds to the expiry index's unsigned order.
// Times before 1970 sort first as 0: they are long expired, and clamping
// keeps the key a plain big-endian unix time.
func indexNano(nano int64) uint64 {
	if nano < 0 {
		return 0
	}
	return uint64(nano)
}

// forwardMark ends the expiry index key of a forward record, so that Count
// skips it by its length without reading the record.
const forwardMark = 'f'
