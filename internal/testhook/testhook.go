// Package testhook holds the points where the session handler tells a test
// what its background work did, so that integration tests, which run Caddy
// in their own process, wait for that work to have happened instead of
// sleeping. Every hook is nil outside tests, and costs one atomic load.
package testhook

import (
	"sync/atomic"
	"time"
)

// TunnelCheck is what one check of an open tunnel's session did.
type TunnelCheck struct {
	Periodic bool      // a check of the interval, not the first one or one an end asked for
	Now      time.Time // the session clock the check read the session at
	Closed   bool      // the tunnel is closed after the check
	// Failed: the store failed the check's read or its touch (a check
	// has one interval for both), so it decided nothing.
	Failed bool
}

// TunnelChecked, if set, is called at the end of every check of an open
// tunnel (tunnel.go), with what it did.
var TunnelChecked atomic.Pointer[func(TunnelCheck)]

// CopyListed, if set, is called when a copy of sessions from one store
// into another (store.CopyPage, and a fallback_store's copy on first use)
// has read them from the old store and is about to import them into the
// new one, with their hashes: a test holds the copy there to write to the
// old store in between.
var CopyListed atomic.Pointer[func(hashes []string)]

// StreamOpening, if set, is called when a response that opened a tunnel
// or started to stream is about to be registered among the open tunnels
// (tunnel.go), before anything of it is: a test holds it there to commit
// an end of its session in between.
var StreamOpening atomic.Pointer[func()]

// TunnelFollowed, if set, is called when a check of an open tunnel or
// stream has followed its session to a new ID and is about to move it
// there (tunnel.go): a test holds it there to end the new session.
var TunnelFollowed atomic.Pointer[func()]

// StoreChanged, if set, is called when a store shared with other
// instances has told this process that keys it read were changed (Redis
// invalidated them; nil: any key), after its cache dropped them: a test
// waits for its session's key before it lets an answer of it go.
var StoreChanged atomic.Pointer[func(keys []string)]

// MoveEndWaits, if set, is called when a handler with fallback_store,
// whose config is going, has to wait before it takes the fallback_store
// back, for a copy from it in flight (a first use, a page of migrate): a
// test holding that copy lets it go then.
var MoveEndWaits atomic.Pointer[func()]

// BoltOpened, if set, is called when the session handler opens a bolt
// file (store_bolt.go), with a function that runs the file's sweeper once,
// at once, as its ticker does (at the session clock), and returns how
// many sessions it removed: a test that moved the clock past a deadline
// sweeps then, instead of waiting a minute for the ticker.
var BoltOpened atomic.Pointer[func(sweep func() (int, error))]

// ResponseCommitting, if set, is called when the session handler is about
// to commit a final response (its commands, touch and cookie), before any
// of it reaches the store or the client: a test holds it there to see
// what the request had done, and left, by then.
var ResponseCommitting atomic.Pointer[func()]
