package caddysession

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestLiveStoreExpired judges sessions of each realm by the timeouts of
// the handlers that would open them: a session lives while one of them
// would still open it.
func TestLiveStoreExpired(t *testing.T) {
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour, TouchInterval: time.Second}
	long := session.Timeouts{Idle: time.Hour, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	s := &liveStore{handlers: []*Handler{
		{realm: "shop", timeouts: short},
		{realm: "blog", timeouts: short},
		{realm: "blog", timeouts: long},
	}}
	cases := []struct {
		name, realm string
		idle        time.Duration // since the session was last seen
		want        bool
	}{
		{"within its realm's timeout", "shop", 30 * time.Second, false},
		{"past its realm's timeout", "shop", 2 * time.Minute, true},
		{"past one handler of its realm, within another", "blog", 2 * time.Minute, false},
		{"past every handler of its realm", "blog", 2 * time.Hour, true},
		{"of no realm, within one handler", "", 2 * time.Minute, false},
		{"of a realm no handler serves, within its stored deadlines", "gone", 2 * time.Minute, false},
		{"of a realm no handler serves, past its stored deadlines", "gone", 13 * time.Hour, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := long.NewRecord(base) // stored deadlines: 1h idle, 12h absolute
			rec.Realm = tc.realm
			rec.IdleDeadline = base.Add(12 * time.Hour)
			if got := s.expired(rec, base.Add(tc.idle)); got != tc.want {
				t.Fatalf("expired = %v, want %v", got, tc.want)
			}
		})
	}
}
