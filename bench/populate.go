package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// populate writes n sessions of 3 keys (about 100 bytes) into a new bolt
// file at path, directly with the store package (no fsync, many records
// per transaction), and returns their IDs. The sessions are in the steady
// state of a site in use: created an hour ago, last seen within the last
// touch interval, so that a read load touches each one once in the next
// interval, at a random moment, as it would on a live site.
func populate(path string, n int) ([]string, error) {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	s, err := bolt.Open(path, bolt.Options{NoSync: true, SweepInterval: -1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	t := session.Timeouts{
		Idle:          session.DefaultIdleTimeout,
		Absolute:      session.DefaultAbsoluteTimeout,
		TouchInterval: session.DefaultTouchInterval,
	}
	now := time.Now()
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	ids := make([]string, n)
	const chunk = 100_000
	entries := make([]store.Entry, 0, min(n, chunk))
	for i := range n {
		ids[i] = session.NewID()
		rec := t.NewRecord(now.Add(-time.Hour))
		t.Touch(rec, now.Add(-time.Duration(rng.Int64N(int64(t.TouchInterval)))))
		rec.Values = map[string]string{
			"user":  fmt.Sprintf("user-%07d@example.com", i),
			"roles": roles,
			"cart":  cart,
		}
		entries = append(entries, store.Entry{Hash: session.HashID(ids[i]), Record: rec})
		if len(entries) == cap(entries) || i == n-1 {
			if err := s.Put(context.Background(), entries, "user"); err != nil {
				return nil, err
			}
			entries = entries[:0]
		}
	}
	return ids, nil
}
