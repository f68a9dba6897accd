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

// TestLiveStoreDeadlines shows each session the deadlines that its realm's
// handlers keep to: the session is live just before the earlier of the two
// shown and over at it, as expired judges, whatever timeouts the record
// was written with.
func TestLiveStoreDeadlines(t *testing.T) {
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour, TouchInterval: time.Second}
	long := session.Timeouts{Idle: time.Hour, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	tight := session.Timeouts{Idle: time.Minute, Absolute: 90 * time.Second, TouchInterval: time.Second}
	remember := session.Timeouts{Idle: time.Minute, Absolute: time.Hour, TouchInterval: time.Second,
		RememberIdle: 2 * time.Hour, RememberAbsolute: 24 * time.Hour}
	s := &liveStore{handlers: []*Handler{
		{realm: "shop", timeouts: short},
		{realm: "blog", timeouts: short},
		{realm: "blog", timeouts: long},
		{realm: "tight", timeouts: tight},
		{realm: "remember", timeouts: remember},
	}}
	cases := []struct {
		name, realm    string
		remembered     bool
		idle, absolute time.Duration // the deadlines shown, from the last use and creation
	}{
		{"shortened idle timeout", "shop", false, time.Minute, time.Hour},
		{"the longest handler of its realm", "blog", false, time.Hour, 12 * time.Hour},
		{"idle deadline capped by the shortened absolute one", "tight", false, 90*time.Second - 30*time.Second, 90 * time.Second},
		{"remembered, by the remember timeouts", "remember", true, 2 * time.Hour, 24 * time.Hour},
		{"of no realm, by the longest handler", "", false, time.Hour, 12 * time.Hour},
		{"of a realm no handler serves, its stored deadlines", "gone", false, 3 * time.Hour, 48 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Stored by a config with longer timeouts than any now, and
			// last used 30s after it started.
			rec := session.Timeouts{Idle: 3 * time.Hour, Absolute: 48 * time.Hour, RememberIdle: 3 * time.Hour, RememberAbsolute: 48 * time.Hour}.NewRecord(base)
			rec.Realm, rec.Remembered = tc.realm, tc.remembered
			seen := base.Add(30 * time.Second)
			rec.LastSeen, rec.IdleDeadline = seen, seen.Add(3*time.Hour)
			idle, absolute := s.deadlines(rec)
			if want := seen.Add(tc.idle); !idle.Equal(want) {
				t.Errorf("idle deadline %v, want %v", idle, want)
			}
			if want := base.Add(tc.absolute); !absolute.Equal(want) {
				t.Errorf("absolute deadline %v, want %v", absolute, want)
			}
			end := idle
			if absolute.Before(end) {
				end = absolute
			}
			if s.expired(rec, end.Add(-time.Nanosecond)) || !s.expired(rec, end) {
				t.Errorf("the deadlines shown (%v, %v) are not when the session ends", idle, absolute)
			}
		})
	}
}
