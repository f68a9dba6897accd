package redis

import (
	"errors"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestListAgreesWithLoadAtTheDeadline: the index scores a session by its
// deadline cut to the microsecond, and a record's deadline is in
// nanoseconds. List, which the admin API shows, left out a session that
// Load, ListByIdentity (devices) and a request still found live in the
// last microsecond before its deadline: each must say what the record
// says, at every instant around the deadline.
func TestListAgreesWithLoadAtTheDeadline(t *testing.T) {
	t.Parallel()
	s := standalone(t).open(t)
	short := session.Timeouts{Idle: time.Minute, Absolute: time.Hour}
	created := base.Add(500 * time.Nanosecond) // a deadline inside a microsecond
	h := create(t, s, "edge", created, short, map[string]string{"user": "alice"})
	deadline := created.Add(time.Minute)
	for _, tc := range []struct {
		name string
		at   time.Duration // from the deadline
	}{
		{"a microsecond before", -time.Microsecond},
		{"within the deadline's microsecond, before it", -300 * time.Nanosecond},
		{"1ns before", -time.Nanosecond},
		{"at the deadline", 0},
		{"1ns after", time.Nanosecond},
		{"a microsecond after", time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := deadline.Add(tc.at)
			want := tc.at < 0
			_, err := s.Load(t.Context(), h, now, short)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if live := err == nil; live != want {
				t.Fatalf("Load at %v: live %v, want %v", now, live, want)
			}
			listed, _, err := s.List(t.Context(), "", 10, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(listed) == 1; got != want {
				t.Errorf("List at %v: %d sessions, want live %v", now, len(listed), want)
			}
			devices, err := s.ListByIdentity(t.Context(), "shop", "user", "alice", now)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(devices) == 1; got != want {
				t.Errorf("ListByIdentity at %v: %d sessions, want live %v", now, len(devices), want)
			}
		})
	}
}
