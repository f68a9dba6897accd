package redis

import (
	"context"
	"errors"

	"github.com/caddy-session/caddy-session/store"
)

// writeCluster makes the writes of c on Redis Cluster, where one script
// cannot span the slots of the session keys and the index buckets: in
// steps, in an order that never loses a session (see the package
// documentation).
func (s *Store) writeCluster(ctx context.Context, c *change) error {
	wait := s.replicasFor(c)
	// 1: add the index entry, so that no session exists unindexed.
	index := newOps()
	s.addEntry(index, c, true)
	if _, err := s.run(ctx, index, 0); err != nil {
		return redisError("indexing session "+c.subject(), err)
	}
	if s.afterIndexed != nil {
		s.afterIndexed()
	}
	// 2: write the new key, before the old one goes. One that too few
	// replicas acknowledged is written all the same: the steps go on, so
	// that the old key does not stay live beside it, and the write's
	// error says so at the end (store.ErrUnreplicated).
	target := newOps()
	s.writeTarget(target, c)
	_, lag := s.run(ctx, target, wait)
	if lag != nil && !errors.Is(lag, store.ErrUnreplicated) {
		return redisError("writing session "+c.subject(), lag)
	}
	// 3: change or delete the old key, if nobody changed it since it was
	// read.
	if c.guarded {
		old := newOps()
		old.guard(s.SessionKey(c.old), c.rev)
		s.writeOld(old, c)
		ok, err := s.run(ctx, old, wait)
		switch {
		case err != nil && !errors.Is(err, store.ErrUnreplicated):
			// Not undone: the script may have run with only its answer
			// lost, and then the copy is the session.
			return redisError("writing session "+c.old.Short(), err)
		case err != nil:
			lag = err
		}
		if !ok {
			if !target.empty() {
				// Nobody was given the copy's ID: it goes.
				s.undoTarget(ctx, c)
			}
			return errConflict
		}
	}
	// 4: remove the entry that is stale now. The session is written: a
	// failure here leaves a stale entry, which readers skip, so it is
	// reported but is not the write's error.
	stale := newOps()
	s.removeEntry(stale, c)
	if _, err := s.run(ctx, stale, 0); err != nil {
		s.onIndex(redisError("updating the index of session "+c.subject(), err))
	}
	if lag != nil {
		return redisError("writing session "+c.subject(), lag)
	}
	return nil
}

// undoTarget deletes the key a Cluster rotation wrote before its write to
// the old key was refused: nobody was given its ID. Its index entry goes
// stale and is skipped by readers.
func (s *Store) undoTarget(ctx context.Context, c *change) {
	undo := newOps()
	undo.op("D", s.SessionKey(c.target))
	if !c.newEntry.none() {
		defer func() {
			e := newOps()
			e.op("z", c.newEntry.bucket, c.newEntry.member)
			if _, err := s.run(ctx, e, 0); err != nil {
				s.onIndex(redisError("removing the index entry of the unfinished copy of session "+c.target.Short(), err))
			}
		}()
	}
	if _, err := s.run(ctx, undo, 0); err != nil {
		s.onIndex(redisError("removing the unfinished copy of session "+c.target.Short(), err))
	}
}
