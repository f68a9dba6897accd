// Package bolt is a store.Store in a single bbolt file: sessions survive a
// restart of Caddy with nothing else to run. Only one process can open the
// file at a time.
//
// The file holds three buckets:
//
//   - sessions: the 32-byte session hash → the encoded record (codec.go);
//   - expiry: the record's ExpiresAt as 8-byte big-endian unix nanoseconds,
//     then the hash → nothing. Sorted by time, so the sweeper reads the
//     expired records from the start instead of scanning them all;
//   - identity: the identity key name and its value, each uvarint-length-
//     prefixed, then the hash → nothing, so DeleteByIdentity is a prefix
//     scan.
//
// Every write changes the record and both indexes in one transaction.
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

	commits committer    // the queue of writers; see commit.go
	cache   *recordCache // nil when off; see cache.go

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
	s := &Store{db: db, path: path, now: opts.Now, onSweep: opts.OnSweep, cache: newRecordCache(cacheSize)}
	if s.now == nil {
		s.now = time.Now
	}
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

// Close stops the sweeper, waiting for a sweep under way to finish its
// batch, and closes the file. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Load implements store.Store.
func (s *Store) Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec := s.cache.get(hash)
	if rec == nil {
		gen := s.cache.generation()
		var err error
		if rec, err = s.read(hash); err != nil {
			return nil, err
		}
		s.cache.fill(hash, rec, gen)
	}
	if timeouts.Expired(rec, now) {
		// An expired record is left for an update or the sweeper to
		// remove: Load takes no write lock.
		return nil, store.ErrNotFound
	}
	// The cached record is shared: the caller gets its own.
	return rec.Clone(), nil
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

// importBatch is how many records one transaction of Import writes.
const importBatch = 20_000

// Import stores the records of entries as they are, each under its hash
// and indexed under the identity key identity, replacing any record
// already there. It writes many records per transaction, so it loads a
// large number of sessions (a migration from another store, a benchmark's
// population) far faster than one Update each. Records are not checked
// against limits or timeouts; expired ones are swept as usual.
func (s *Store) Import(ctx context.Context, entries []store.Entry, identity string) error {
	for len(entries) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(entries), importBatch)
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b := s.buckets(tx)
			for _, e := range entries[:n] {
				if err := b.remove(e.Hash); err != nil {
					return err
				}
				if err := b.put(e.Hash, e.Record, identity); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("importing sessions into %s: %w", s.path, err)
		}
		entries = entries[n:]
	}
	return nil
}

// errNeedsNewHash is returned by an Update that would start a session but
// says not where to keep it.
var errNeedsNewHash = errors.New("an update that starts a new session needs a NewHash to store it under")

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, u store.Update) (*session.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		result   *session.Record
		notFound bool
	)
	err := s.write(func(tx *bbolt.Tx) error {
		var err error
		result, notFound, err = update(s.buckets(tx), u)
		return err
	})
	if err != nil {
		return nil, err
	}
	if notFound {
		return nil, store.ErrNotFound
	}
	return result, nil
}

// update does the steps of store.Update in tx. It reports a missing
// session as notFound with a nil error, rather than as ErrNotFound, so that
// the transaction still commits the removal of an expired record; any
// error rolls back everything the update did.
func update(b txBuckets, u store.Update) (rec *session.Record, notFound bool, err error) {
	destroy := u.Patch != nil && u.Patch.Destroy
	// 1. Read the presented session; an expired one is removed.
	if u.HasHash {
		old, _, err := b.get(u.Hash)
		if err != nil {
			return nil, false, err
		}
		if old != nil && u.Timeouts.Expired(old, u.Now) {
			if err := b.remove(u.Hash); err != nil {
				return nil, false, err
			}
			old = nil
		}
		if old == nil && !destroy && u.NewHash == nil {
			return nil, true, nil
		}
		rec = old
	}
	// 2. Destroy it.
	if destroy && rec != nil {
		if err := b.remove(u.Hash); err != nil {
			return nil, false, err
		}
		rec = nil
	}
	// 3. Apply the patch, to a new record if there is none.
	if u.Patch.Changes() {
		if rec == nil {
			if u.NewHash == nil {
				return nil, false, errNeedsNewHash
			}
			rec = u.Timeouts.NewRecord(u.Now)
		}
		if err := u.Patch.ApplyTo(rec, u.Limits); err != nil {
			return nil, false, err
		}
	}
	if rec == nil {
		return nil, false, nil
	}
	// 4. Touch it and store it where it now lives. Removing first clears
	// the old record's index entries, whatever they were.
	u.Timeouts.Touch(rec, u.Now)
	if u.HasHash {
		if err := b.remove(u.Hash); err != nil {
			return nil, false, err
		}
	}
	target := u.Hash
	if u.NewHash != nil {
		target = *u.NewHash
		// A record already under the new hash is replaced; its index
		// entries must go with it.
		if err := b.remove(target); err != nil {
			return nil, false, err
		}
	}
	if err := b.put(target, rec, u.Identity); err != nil {
		return nil, false, err
	}
	return rec, false, nil
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
		// writes committed with it (commit.go).
		found = b.sessions.Get(hash[:]) != nil
		return b.remove(hash)
	})
	if err == nil && !found {
		return store.ErrNotFound
	}
	return err
}

// DeleteByIdentity implements store.Store.
func (s *Store) DeleteByIdentity(ctx context.Context, key, value string) (int, error) {
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
		prefix := identityPrefix(key, value)
		// bbolt cursors do not survive deletes, so collect first.
		var entries [][]byte
		c := b.identity.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			entries = append(entries, bytes.Clone(k))
		}
		for _, k := range entries {
			var hash session.Hash
			if len(k) != len(prefix)+len(hash) {
				// Not an entry of this layout; leave it to Check.
				continue
			}
			copy(hash[:], k[len(prefix):])
			if owned(b.sessions.Get(hash[:]), key, value) {
				if err := b.remove(hash); err != nil {
					return err
				}
				n++
			}
			// The record's removal deleted this entry; a stale entry goes
			// too.
			if err := b.identity.Delete(k); err != nil {
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

// owned reports whether the encoded record v belongs to the identity key
// with value. Only a record that still does is removed for an index entry:
// the index is kept in step with the records, but it is the record that
// says whose session it is. A record too corrupt to tell is counted as
// owned, since it is listed under the identity and a "log out everywhere"
// must not leave it behind.
func owned(v []byte, key, value string) bool {
	if v == nil {
		return false
	}
	rec, identity, err := decode(v)
	if err != nil {
		return true
	}
	got, ok := rec.Values[key]
	return identity == key && ok && got == value
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
	var after session.Hash
	if cursor != "" {
		h, err := session.ParseHash(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("bad session list cursor %q: pass back the cursor a list returned", cursor)
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
			if len(k) != len(session.Hash{}) {
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
			rec, _, err := decode(v)
			if err != nil {
				return fmt.Errorf("session %x: %w", k[:8], err)
			}
			if rec.Expired(now) {
				continue
			}
			var e store.Entry
			copy(e.Hash[:], k)
			e.Record = rec
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
// reads keys only.
func (s *Store) Count(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
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
			n++
		}
		return nil
	})
	return n, err
}

// Sweep removes the records that have expired at now, by their stored
// deadlines, and returns how many it removed. It reads the expiry index
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
// many records it removed and how many index entries it handled: fewer
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
		var hash session.Hash
		if len(k) == 8+len(hash) {
			copy(hash[:], k[8:])
			v := b.sessions.Get(hash[:])
			if v != nil {
				// The index says expired; the record has the last word,
				// in case the entry is stale.
				rec, _, derr := decode(v)
				if derr != nil || rec.Expired(now) {
					if err := b.remove(hash); err != nil {
						return removed, len(keys), err
					}
					removed++
				}
			}
		}
		// Gone with its record, or stale: either way it goes.
		if err := b.expiry.Delete(k); err != nil {
			return removed, len(keys), err
		}
	}
	return removed, len(keys), nil
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
			n, err := s.sweep(s.now(), s.stop)
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
	tx    *bbolt.Tx
	cache *recordCache
}

func buckets(tx *bbolt.Tx) txBuckets {
	return txBuckets{
		sessions: tx.Bucket(bucketSessions),
		expiry:   tx.Bucket(bucketExpiry),
		identity: tx.Bucket(bucketIdentity),
	}
}

// buckets are the store's buckets in tx, for writing: every record the
// transaction changes leaves the cache when it commits.
func (s *Store) buckets(tx *bbolt.Tx) txBuckets {
	b := buckets(tx)
	b.tx, b.cache = tx, s.cache
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

// put stores rec under hash with its index entries. Any record already
// under hash must have been removed first.
func (b txBuckets) put(hash session.Hash, rec *session.Record, identity string) error {
	b.cache.forgetOnCommit(b.tx, hash)
	if err := b.sessions.Put(hash[:], encode(rec, identity)); err != nil {
		return err
	}
	if err := b.expiry.Put(expiryKey(rec.ExpiresAt(), hash), nil); err != nil {
		return err
	}
	if k := identityKey(rec, identity, hash); k != nil {
		return b.identity.Put(k, nil)
	}
	return nil
}

// remove deletes the record under hash, if any, with its index entries.
// A record too corrupt to decode is deleted alone; its stale index entries
// are dropped when the sweeper or DeleteByIdentity meets them.
func (b txBuckets) remove(hash session.Hash) error {
	v := b.sessions.Get(hash[:])
	if v == nil {
		return nil
	}
	b.cache.forgetOnCommit(b.tx, hash)
	rec, identity, err := decode(v)
	if err == nil {
		if err := b.expiry.Delete(expiryKey(rec.ExpiresAt(), hash)); err != nil {
			return err
		}
		if k := identityKey(rec, identity, hash); k != nil {
			if err := b.identity.Delete(k); err != nil {
				return err
			}
		}
	}
	return b.sessions.Delete(hash[:])
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

// expiryKey is the expiry index key of a record expiring at t.
func expiryKey(t time.Time, hash session.Hash) []byte {
	k := make([]byte, 0, 8+len(hash))
	k = binary.BigEndian.AppendUint64(k, indexNano(unixNano(t)))
	return append(k, hash[:]...)
}

// identityPrefix is the start of the identity index keys of sessions whose
// identity key is key with value. The lengths make it unambiguous: "ali"
// is no prefix of "alice".
func identityPrefix(key, value string) []byte {
	k := make([]byte, 0, 2*binary.MaxVarintLen64+len(key)+len(value)+len(session.Hash{}))
	k = appendString(k, key)
	return appendString(k, value)
}

// identityKey is the identity index key of rec, or nil if it has none: no
// identity key is configured, or the record does not hold it.
func identityKey(rec *session.Record, identity string, hash session.Hash) []byte {
	if identity == "" {
		return nil
	}
	value, ok := rec.Values[identity]
	if !ok {
		return nil
	}
	return append(identityPrefix(identity, value), hash[:]...)
}
