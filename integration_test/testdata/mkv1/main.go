// Command mkv1 wrote testdata/v1-sessions.db with the store of the last
// version before realms and forward records (commit 9d6db83, bolt codec
// version 1), for the upgrade test: check that commit out and run
//
//	go run ./integration_test/testdata/mkv1 v1-sessions.db
//
// The session's deadlines are a century away, so that the test, which
// cannot move its clock back, still finds it live.
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

// UpgradeID is the session's ID, as the browser holds it.
const UpgradeID = "v1UpgradeAliceSessionIDv1UpgradeAliceSessio"

func main() {
	s, err := bolt.Open(os.Args[1], bolt.Options{SweepInterval: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	century := 100 * 365 * 24 * time.Hour
	h := session.HashID(UpgradeID)
	if _, err := s.Update(context.Background(), store.Update{
		NewHash:  &h,
		Patch:    &session.Patch{Set: map[string]string{"user": "alice", "cart": "apple"}},
		Identity: "user",
		Now:      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Timeouts: session.Timeouts{Idle: century, Absolute: century, TouchInterval: time.Minute},
		Limits:   session.DefaultLimits(),
	}); err != nil {
		log.Fatal(err)
	}
}
