// Package store holds the Store interface, which keeps session records
// under the hash of their ID, and its implementations. Every implementation
// passes the one conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// ErrNotFound is returned for a session that does not exist or has expired.
// Callers treat it as "anonymous", never as a store failure.
var ErrNotFound = errors.New("session not found")

// Store keeps session records. Implementations are safe for concurrent use
// by many goroutines and by several Caddy configs at once (reloads), and
// every method that writes is atomic: it happens whole or not at all.
type Store interface {
	// Load returns the live record stored under hash, or ErrNotFound when
	// there is none or it has expired at now (by u.Timeouts as well as by
	// its stored deadlines).
	Load(ctx context.Context, hash session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error)

	// Update applies u in one transaction and returns the record as it now
	// stands, or nil when the update ended the session and started none.
	// See Update for the exact semantics. A *session.RuleError from the
	// patch aborts the whole update and is returned as is.
	Update(ctx context.Context, u Update) (*session.Record, error)

	// Delete removes the session stored under hash, returning ErrNotFound
	// when there is none.
	Delete(ctx context.Context, hash session.Hash) error

	// DeleteByIdentity removes every session whose identity key (see
	// Update.Identity) is key and whose value of it is value, and returns
	// how many it removed.
	DeleteByIdentity(ctx context.Context, key, value string) (int, error)

	// List returns up to limit live sessions in the order of their hashes,
	// starting after cursor ("" for the first page), and the cursor of the
	// next page ("" after the last). It never holds a transaction open
	// between calls.
	List(ctx context.Context, cursor string, limit int, now time.Time) ([]Entry, string, error)

	// Count returns how many live sessions the store holds at now.
	Count(ctx context.Context, now time.Time) (int, error)

	// Close releases the store's resources.
	Close() error
}

// Entry is one session in a listing.
type Entry struct {
	Hash   session.Hash
	Record *session.Record
}

// Update is one atomic change to a session, made in this order:
//
//  1. If HasHash, the record under Hash is read. If it is missing or
//     expired (by Timeouts), it counts as missing; an expired one is
//     removed. A missing record makes Update return ErrNotFound unless
//     Patch.Destroy is set or NewHash is set (a new session is wanted).
//  2. If Patch.Destroy, the record under Hash is removed.
//  3. If Patch sets or deletes keys, they are applied per key to the
//     record, or to a new one created at Now if there is none (which needs
//     NewHash), and the result is checked against Limits.
//  4. The record, if any, is touched at Now (LastSeen and IdleDeadline
//     move, by Timeouts) and stored under NewHash if set, removing it from
//     Hash, or else under Hash.
type Update struct {
	// Hash is the session the request presented, when HasHash is set.
	Hash    session.Hash
	HasHash bool
	// NewHash, when not nil, is where the record lives afterwards: a
	// renewal (the old hash stops working at once) or a new session.
	NewHash *session.Hash
	// Patch is the change; nil only touches the record.
	Patch *session.Patch
	// Identity names the key whose value identifies the user (usually
	// "user"); the store indexes sessions by it for DeleteByIdentity. Empty
	// means no index entry.
	Identity string
	Now      time.Time
	Timeouts session.Timeouts
	Limits   session.Limits
}
