package bolt

import (
	"fmt"
	"runtime"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// Group commit. A bbolt file has one writer at a time, and each commit
// ends with an fsync of about a millisecond or more: writing sessions one
// transaction each caps a login storm at one session per fsync, with every
// other writer waiting in line. Instead, writers that arrive while a commit
// is under way queue up, and the next commit runs all of them in one
// transaction, so one fsync makes many of them durable at once. A writer
// that finds no commit under way starts one at once: a lone write waits
// for nothing (bbolt's own db.Batch would hold it for MaxBatchDelay).
//
// Each writer still gets its own result. When one writer's function fails,
// the transaction rolls back; that writer is then run alone, for its own
// error, and the others are run again together. So a function may run more
// than once and must set its results afresh each time.

// maxGroup bounds the writers of one transaction, so that a huge queue
// does not make one huge transaction.
const maxGroup = 1000

type writeCall struct {
	fn   func(*bbolt.Tx) error
	err  error
	done chan struct{} // closed when the call's result is final
	lead chan struct{} // closed when the call is to commit the next group
}

// committer is the queue of writers of one Store.
type committer struct {
	mu      sync.Mutex
	queue   []*writeCall
	writing bool // a leader is committing; the queue waits for it
}

// write runs fn in a read-write transaction, with the writers queued
// beside it, and returns fn's error or the commit's.
func (s *Store) write(fn func(tx *bbolt.Tx) error) error {
	c := &writeCall{fn: fn, done: make(chan struct{}), lead: make(chan struct{})}
	q := &s.commits
	q.mu.Lock()
	q.queue = append(q.queue, c)
	leader := !q.writing
	q.writing = true
	q.mu.Unlock()
	if !leader {
		select {
		case <-c.done:
			return c.err
		case <-c.lead:
			// The previous leader is done and c heads the queue.
		}
	}
	q.gather()
	q.mu.Lock()
	group := q.queue[:min(len(q.queue), maxGroup)]
	q.queue = q.queue[len(group):]
	q.mu.Unlock()

	s.commitGroup(group)

	q.mu.Lock()
	if len(q.queue) > 0 {
		close(q.queue[0].lead) // it leads the next group; writing stays set
	} else {
		q.writing = false
		q.queue = nil // let the array go
	}
	q.mu.Unlock()
	return c.err
}

// maxGatherRounds bounds how often a leader lets the other goroutines run
// before it commits, and idleGatherRounds is how many rounds in a row that
// bring no writer end it: one is not enough, since a request reaches the
// store only after several trips through the network poller (its own
// arrival, the upstream's answer), one a round.
const (
	maxGatherRounds  = 16
	idleGatherRounds = 3
)

// gather lets the goroutines that are ready to run, and those the network
// poller has made ready, go first, as long as that brings more writers
// into the queue, so that they join this commit
// rather than wait for the next. With one P (GOMAXPROCS=1, as on a one-CPU
// machine) this is what makes the group: while the leader's thread is in
// fdatasync it keeps the P, and no other goroutine runs, so no writer
// arrives during a commit; without this, the first writer after a commit
// would start the next one at once, alone. With several Ps the queue fills
// during the commit anyway: there the leader commits at once.
func (q *committer) gather() {
	if runtime.GOMAXPROCS(0) > 1 {
		return
	}
	idle := 0
	for range maxGatherRounds {
		n := q.queued()
		if n >= maxGroup {
			return
		}
		pollYield() // pollyield.go
		if q.queued() > n {
			idle = 0
		} else if idle++; idle == idleGatherRounds {
			return
		}
	}
}

// queued returns how many writers are in the queue.
func (q *committer) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// commitGroup runs the calls of group in one transaction and sets each
// call's result.
//
// The touches pending in memory (touch.go) are written first in each of
// its transactions: they ride with the group's commit instead of making
// their own.
func (s *Store) commitGroup(group []*writeCall) {
	group = append([]*writeCall(nil), group...)
	touches := s.touches.take(maxGroup)
	for len(group) > 0 {
		failed := -1
		touchesFailed := false
		err := s.update(func(tx *bbolt.Tx) error {
			b := s.buckets(tx)
			if err := safeCall(func(*bbolt.Tx) error { return writeTouches(b, touches) }, tx); err != nil {
				touchesFailed = true
				return err
			}
			for i, c := range group {
				if err := safeCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if touchesFailed {
			// The pending touches failed the commit, not the writers. A
			// touch promises the client nothing (its session keeps the
			// idle deadline last written): they are dropped, and the
			// group committed again without them. Kept, they would fail
			// every commit after this one too.
			if s.onTouchError != nil {
				s.onTouchError(fmt.Errorf("dropping %d deferred touches that failed a commit: %w", len(touches), err))
			}
			s.touches.written(touches)
			touches = nil
			continue
		}
		if failed < 0 {
			if err == nil {
				s.touches.written(touches)
			}
			// Committed, or the commit itself failed: the same for all.
			for _, c := range group {
				c.err = err
				close(c.done)
			}
			return
		}
		// The failed call's error is only its own if it fails alone; the
		// others' work was rolled back with it and is done again.
		c := group[failed]
		c.err = s.update(func(tx *bbolt.Tx) error { return safeCall(c.fn, tx) })
		close(c.done)
		group = append(group[:failed], group[failed+1:]...)
	}
}

// safeCall runs fn, turning a panic into an error: a panic would otherwise
// leave the writers queued behind this group waiting forever.
func safeCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("session store write panicked: %v", r)
		}
	}()
	return fn(tx)
}
