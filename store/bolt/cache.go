package bolt

import (
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
)

// The record cache. Profiled under a read load, bbolt's read transaction
// and the decoding of the record were a third of the session handler's
// time and most of its allocations, for a record that changes at most
// once a touch interval. This process is the file's only user (bbolt locks
// it) and every write goes through the Store, so the Store can keep
// recently read records decoded in memory and know exactly when one
// changes.
//
// Coherence: a write forgets the hashes it changed once its transaction
// has committed (bbolt's OnCommit), and every forget moves a generation
// counter. A Load that missed notes the generation before reading the
// file, and caches what it read only if no forget came in between: a
// record read before a commit is never cached after the commit forgot it.
// Cached records are never changed; Load returns copies.

// DefaultCacheRecords is how many records the cache keeps, unless
// Options.CacheRecords says otherwise: about 5 MiB of small sessions.
const DefaultCacheRecords = 16 << 10

type recordCache struct {
	mu      sync.RWMutex
	records map[session.Hash]*session.Record
	gen     uint64 // moved by every forget; guarded by mu
	max     int
}

func newRecordCache(max int) *recordCache {
	if max <= 0 {
		return nil
	}
	return &recordCache{records: make(map[session.Hash]*session.Record), max: max}
}

// get returns the cached record, or nil. The record must not be changed.
func (c *recordCache) get(hash session.Hash) *session.Record {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	rec := c.records[hash]
	c.mu.RUnlock()
	return rec
}

// generation is to be read before reading a record from the file, and
// passed to fill with it.
func (c *recordCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// fill caches rec, read from the file after generation returned gen,
// unless a write has been forgotten since. rec must not be changed after.
func (c *recordCache) fill(hash session.Hash, rec *session.Record, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.records) >= c.max {
		for h := range c.records { // a random one: map order is random
			delete(c.records, h)
			break
		}
	}
	c.records[hash] = rec
}

// forget drops the record of hash, which a committed write has changed.
func (c *recordCache) forget(hash session.Hash) {
	c.mu.Lock()
	delete(c.records, hash)
	c.gen++
	c.mu.Unlock()
}

// forgetOnCommit arranges for hash to be forgotten when tx has committed.
func (c *recordCache) forgetOnCommit(tx *bbolt.Tx, hash session.Hash) {
	if c == nil || tx == nil {
		return
	}
	tx.OnCommit(func() { c.forget(hash) })
}
