// mkv1 wrote store/bolt/testdata/v1.db with the bolt store of main at
// 9d6db837 (codec version 1, before realms and forward records), for the
// test that opens it with the current code. It is kept to show how the file
// was made; it builds only against that version (git archive 9d6db837,
// copy this to cmd/mkv1 there, go run ./cmd/mkv1 v1.db).
package main

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

func main() {
	path := os.Args[1]
	s, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	to := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	for _, c := range []struct {
		name     string
		identity string
		values   map[string]string
	}{
		{"v1:alice-laptop", "user", map[string]string{"user": "alice", "cart": "3"}},
		{"v1:alice-phone", "user", map[string]string{"user": "alice"}},
		{"v1:bob", "user", map[string]string{"user": "bob", "role": "admin"}},
		{"v1:anonymous", "user", map[string]string{"cart": "7"}},
		{"v1:unindexed", "", map[string]string{"user": "alice"}},
	} {
		h := session.HashID(c.name)
		if _, err := s.Update(context.Background(), store.Update{
			NewHash: &h, Patch: &session.Patch{Set: c.values},
			Identity: c.identity, Now: base, Timeouts: to, Limits: session.DefaultLimits(),
		}); err != nil {
			log.Fatal(err)
		}
	}
}
