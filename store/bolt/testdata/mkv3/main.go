// mkv3 wrote store/bolt/testdata/v3.db with the bolt store of main at
// c069f78 (codec version 3 records, index entries in the short form, and
// in the full form where two records want one short key), for the tests
// that open it with the current code. It is kept to show how the file was
// made; it builds only against that version (git archive c069f78, then go
// run ./store/bolt/testdata/mkv3 v3.db).
package main

import (
	"context"
	"log"
	"os"
	"strings"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

var (
	base     = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	timeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	short    = session.Timeouts{Idle: 30 * time.Second, Absolute: time.Hour, TouchInterval: time.Minute}
)

// twin is session.HashID(name) with the last 16 bytes of another hash: a
// hash alike in its first 16 bytes, which chance never makes, so that the
// file holds full-form index entries.
func twin(name string) session.Hash {
	h := session.HashID(name)
	other := session.HashID(name + ":twin")
	copy(h[16:], other[16:])
	return h
}

func main() {
	s, err := bolt.Open(os.Args[1], bolt.Options{SweepInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		hash            session.Hash
		realm, identity string
		values          map[string]string
		to              session.Timeouts
	}{
		{session.HashID("v3:alice-laptop"), "shop", "user", map[string]string{"user": "alice", "cart": "3"}, timeouts},
		// The same deadline and identity as the laptop's, and a hash alike
		// in its first 16 bytes: both its entries take the full form.
		{twin("v3:alice-laptop"), "shop", "user", map[string]string{"user": "alice", "cart": "3"}, timeouts},
		{session.HashID("v3:alice-phone"), "admin", "user", map[string]string{"user": "alice"}, timeouts},
		{session.HashID("v3:bob"), "shop", "user", map[string]string{"user": "bob", "role": "admin"}, timeouts},
		{session.HashID("v3:anonymous"), "shop", "user", map[string]string{"cart": "7"}, timeouts},
		{session.HashID("v3:unindexed"), "shop", "", map[string]string{"user": "alice"}, timeouts},
		{session.HashID("v3:carol"), "shop", "user", map[string]string{"user": "carol-" + strings.Repeat("x", 80) + "@example.com"}, timeouts},
		{session.HashID("v3:expired"), "shop", "user", map[string]string{"user": "dave"}, short},
	} {
		h := c.hash
		update(s, store.Update{NewHash: &h, Patch: &session.Patch{Set: c.values},
			Identity: c.identity, Realm: c.realm, Now: base, Timeouts: c.to, Limits: session.DefaultLimits()})
	}
	// A touch a minute later, so that LastSeen is not Created.
	update(s, store.Update{Hash: session.HashID("v3:alice-laptop"), HasHash: true, Identity: "user", Seen: "alice",
		Realm: "shop", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: session.DefaultLimits()})
	// A rotation, which leaves a forward record under v3:bob.
	renewed := session.HashID("v3:bob-renewed")
	update(s, store.Update{Hash: session.HashID("v3:bob"), HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
		Identity: "user", Seen: "bob", Realm: "shop", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: session.DefaultLimits()})
}

func update(s *bolt.Store, u store.Update) {
	if _, err := s.Update(context.Background(), u); err != nil {
		log.Fatal(err)
	}
}
