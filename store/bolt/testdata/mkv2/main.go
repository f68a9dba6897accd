// mkv2 wrote store/bolt/testdata/v2.db with the bolt store of main at
// 7442678 (codec version 2 records, index entries that end in the full
// 32-byte hash), for the tests that open it with the current code. It is
// kept to show how the file was made; it builds only against that version
// (git archive 7442678, then go run ./store/bolt/testdata/mkv2 v2.db).
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

func main() {
	s, err := bolt.Open(os.Args[1], bolt.Options{SweepInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		name, realm, identity string
		values                map[string]string
		to                    session.Timeouts
	}{
		{"v2:alice-laptop", "shop", "user", map[string]string{"user": "alice", "cart": "3"}, timeouts},
		{"v2:alice-phone", "admin", "user", map[string]string{"user": "alice"}, timeouts},
		{"v2:bob", "shop", "user", map[string]string{"user": "bob", "role": "admin"}, timeouts},
		{"v2:anonymous", "shop", "user", map[string]string{"cart": "7"}, timeouts},
		{"v2:unindexed", "shop", "", map[string]string{"user": "alice"}, timeouts},
		{"v2:carol", "shop", "user", map[string]string{"user": "carol-" + strings.Repeat("x", 80) + "@example.com"}, timeouts},
		{"v2:expired", "shop", "user", map[string]string{"user": "dave"}, short},
	} {
		h := session.HashID(c.name)
		update(s, store.Update{NewHash: &h, Patch: &session.Patch{Set: c.values},
			Identity: c.identity, Realm: c.realm, Now: base, Timeouts: c.to, Limits: session.DefaultLimits()})
	}
	// A touch a minute later, so that LastSeen is not Created.
	update(s, store.Update{Hash: session.HashID("v2:alice-laptop"), HasHash: true, Identity: "user", Seen: "alice",
		Realm: "shop", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: session.DefaultLimits()})
	// A rotation, which leaves a forward record under v2:bob.
	renewed := session.HashID("v2:bob-renewed")
	update(s, store.Update{Hash: session.HashID("v2:bob"), HasHash: true, NewHash: &renewed, Patch: &session.Patch{Renew: true},
		Identity: "user", Seen: "bob", Realm: "shop", Now: base.Add(time.Minute), Timeouts: timeouts, Limits: session.DefaultLimits()})
}

func update(s *bolt.Store, u store.Update) {
	if _, err := s.Update(context.Background(), u); err != nil {
		log.Fatal(err)
	}
}
