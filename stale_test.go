package caddysession

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestStaleCopy drives one copy through reads, ends and the passing of
// time, and checks what it would serve.
func TestStaleCopy(t *testing.T) {
	const within = 5 * time.Minute
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}
	alice, bob := session.HashID("alice"), session.HashID("bob")
	record := func(user string) *session.Record {
		rec := timeouts.NewRecord(base)
		rec.Values = map[string]string{"user": user}
		rec.Realm = "shop"
		return rec
	}
	cases := []struct {
		name  string
		steps func(c *staleCopy)
		at    time.Duration // when alice's session is asked for, after base
		want  bool
	}{
		{"read just now", func(c *staleCopy) { c.keep(alice, record("alice"), "user", base, c.reading()) }, time.Minute, true},
		{"read exactly within ago", func(c *staleCopy) { c.keep(alice, record("alice"), "user", base, c.reading()) }, within, true},
		{"read longer ago", func(c *staleCopy) { c.keep(alice, record("alice"), "user", base, c.reading()) }, within + time.Second, false},
		{"never read", func(c *staleCopy) { c.keep(bob, record("bob"), "user", base, c.reading()) }, time.Minute, false},
		{"ended after the read", func(c *staleCopy) {
			c.keep(alice, record("alice"), "user", base, c.reading())
			c.ended(alice, base.Add(time.Second))
		}, time.Minute, false},
		{"a read in flight kept after its end", func(c *staleCopy) {
			c.ended(alice, base.Add(time.Second))
			c.keep(alice, record("alice"), "user", base, c.reading())
		}, time.Minute, false},
		// A logout by a request that started before this read's, and whose
		// end reached the store after the read did: its tombstone has the
		// earlier time, yet came after the read began.
		{"ended, by an earlier request, while the read was on its way", func(c *staleCopy) {
			read := c.reading()
			c.ended(alice, base.Add(-time.Second))
			c.keep(alice, record("alice"), "user", base, read)
		}, time.Minute, false},
		{"the user's end, by an earlier request, while the read was on its way", func(c *staleCopy) {
			read := c.reading()
			c.endedUser(staleUser{"user", "alice"}, base.Add(-time.Second))
			c.keep(alice, record("alice"), "user", base, read)
		}, time.Minute, false},
		{"the user's end, by an earlier request, after the copy was kept", func(c *staleCopy) {
			c.keep(alice, record("alice"), "user", base, c.reading())
			c.endedUser(staleUser{"user", "alice"}, base.Add(-time.Second))
		}, time.Minute, false},
		{"every session of the user ended", func(c *staleCopy) {
			c.keep(alice, record("alice"), "user", base, c.reading())
			c.endedUser(staleUser{"user", "alice"}, base.Add(time.Second))
		}, time.Minute, false},
		{"a read in flight kept after the user's end", func(c *staleCopy) {
			c.endedUser(staleUser{"user", "alice"}, base.Add(time.Second))
			c.keep(alice, record("alice"), "user", base, c.reading())
		}, time.Minute, false},
		{"a login after the user's end", func(c *staleCopy) {
			c.endedUser(staleUser{"user", "alice"}, base)
			c.keep(alice, record("alice"), "user", base.Add(time.Second), c.reading())
		}, time.Minute, true},
		{"every sealed session of the user ended, by the keyed hash", func(c *staleCopy) {
			sealed := record("\x01sealed bytes")
			sealed.Sealed = true
			sealed.SetIdentityTag("tag-of-alice")
			c.keep(alice, sealed, "user", base, c.reading())
			c.endedUser(staleUser{"user", "tag-of-alice"}, base.Add(time.Second))
		}, time.Minute, false},
		{"another user ended", func(c *staleCopy) {
			c.keep(alice, record("alice"), "user", base, c.reading())
			c.endedUser(staleUser{"user", "bob"}, base.Add(time.Second))
			c.ended(bob, base.Add(time.Second))
		}, time.Minute, true},
		{"expired by its idle deadline", func(c *staleCopy) {
			rec := record("alice")
			rec.IdleDeadline = base.Add(time.Minute)
			c.keep(alice, rec, "user", base, c.reading())
		}, 2 * time.Minute, false},
		{"a generation later", func(c *staleCopy) {
			c.keep(alice, record("alice"), "user", base, c.reading())
			c.keep(bob, record("bob"), "user", base.Add(4*time.Minute), c.reading())
			c.keep(bob, record("bob"), "user", base.Add(5*time.Minute), c.reading()) // rotates
		}, 5 * time.Minute, true},
		{"two generations later", func(c *staleCopy) {
			c.keep(alice, record("alice"), "user", base, c.reading())
			c.keep(bob, record("bob"), "user", base.Add(5*time.Minute), c.reading())
			c.keep(bob, record("bob"), "user", base.Add(10*time.Minute), c.reading())
		}, 4 * time.Minute, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &staleCopy{cur: newGeneration(), old: newGeneration(), within: within, rotated: base}
			tc.steps(c)
			_, got := c.get(alice, "user", timeouts, within, base.Add(tc.at))
			if got != tc.want {
				t.Fatalf("served %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStaleCopyBounded fills a copy with more tombstones than it keeps.
// Of sessions (every load of an unknown ID makes one): it drops them for
// a floor, keeps serving what it holds, and keeps nothing a read that
// began before brought. Of users: it forgets the sessions it holds rather
// than a tombstone, and keeps nothing a read in flight brought either.
func TestStaleCopyBounded(t *testing.T) {
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	timeouts := session.Timeouts{Idle: time.Hour, Absolute: time.Hour, TouchInterval: time.Minute}
	c := &staleCopy{cur: newGeneration(), old: newGeneration(), within: time.Hour, rotated: base}
	alice, bob, carol := session.HashID("alice"), session.HashID("bob"), session.HashID("carol")
	c.keep(alice, timeouts.NewRecord(base), "user", base, c.reading())
	inFlight := c.reading()
	for i := range maxStaleTombstones + 1 {
		c.ended(session.HashID(fmt.Sprint("x", i)), base)
	}
	if n := len(c.cur.ended) + len(c.old.ended); n > maxStaleTombstones {
		t.Fatalf("the copy holds %d tombstones of sessions, more than %d", n, maxStaleTombstones)
	}
	if _, ok := c.get(alice, "user", timeouts, time.Hour, base); !ok {
		t.Fatal("the copy forgot a session for tombstones of others")
	}
	c.keep(bob, timeouts.NewRecord(base), "user", base, inFlight)
	if _, ok := c.get(bob, "user", timeouts, time.Hour, base); ok {
		t.Fatal("the copy kept what a read that began before its dropped tombstones brought")
	}
	later := base.Add(time.Second)
	c.keep(carol, timeouts.NewRecord(later), "user", later, c.reading())
	if _, ok := c.get(carol, "user", timeouts, time.Hour, later); !ok {
		t.Fatal("the copy keeps nothing after it dropped tombstones")
	}

	inFlight = c.reading()
	for i := range maxStaleTombstones + 1 {
		c.endedUser(staleUser{"user", fmt.Sprint("x", i)}, later)
	}
	if _, ok := c.get(alice, "user", timeouts, time.Hour, later); ok {
		t.Fatal("the copy still serves a session after it dropped tombstones of users")
	}
	c.keep(bob, timeouts.NewRecord(later), "user", later, inFlight)
	if _, ok := c.get(bob, "user", timeouts, time.Hour, later); ok {
		t.Fatal("the copy kept what a read that began before its dropped tombstones of users brought")
	}
	for i := range maxStaleRecords + 10 {
		c.keep(session.HashID(fmt.Sprint("y", i)), timeouts.NewRecord(later), "user", later.Add(time.Second), c.reading())
	}
	if n := len(c.cur.records); n > maxStaleRecords {
		t.Fatalf("a generation holds %d sessions, more than %d", n, maxStaleRecords)
	}
}
