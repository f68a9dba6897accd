package caddysession

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/store"
)

// TestEvictableAtItsCommit: a login whose app worked a while is committed
// later than it began (devicesNow, minute 120). A session seen in between
// was seen since the login began, and is never ended, however long the app
// took; only one seen more than session.MaxClockLag after the commit was
// seen before the clock stepped back, and goes first.
func TestEvictableAtItsCommit(t *testing.T) {
	login := device("login", 120, 120)
	old := device("old", 61, 100)
	meanwhile := device("meanwhile", 122, 122) // another login, two minutes in
	inUse := device("inUse", 70, 124)          // a device touched four minutes in
	ahead := device("ahead", 66, 150)          // seen before the clock stepped back
	justAhead := device("justAhead", 121, 121) // within the clock lag of the start
	expiring := device("expiring", 64, 65)     // idles out at minute 125
	at := func(minute int) time.Time {
		return devicesNow.Add(time.Duration(minute-120) * time.Minute)
	}
	tests := []struct {
		name    string
		entries []store.Entry
		limit   int
		commit  time.Time
		want    []store.Entry
	}{
		{"another login while the app worked: never ended", []store.Entry{login, meanwhile}, 1, at(125), nil},
		{"another login while the app worked, ten minutes", []store.Entry{login, meanwhile}, 1, at(130), nil},
		{"the idle one goes, not the one used meanwhile", []store.Entry{old, login, inUse}, 2, at(125), []store.Entry{old}},
		{"the idle one goes, not the login made meanwhile", []store.Entry{meanwhile, old, login}, 2, at(125), []store.Entry{old}},
		{"over the cap rather than end one seen meanwhile", []store.Entry{old, login, inUse, meanwhile}, 1, at(125), []store.Entry{old}},
		{"seen after the commit's step back: first", []store.Entry{old, login, inUse, ahead}, 2, at(125), []store.Entry{ahead, old}},
		// expiring, seen at minute 65, idles out at minute 125, while
		// the login's app worked: it does not count at its commit, and
		// old, the one live other, stays.
		{"one that expired while the app worked does not count", []store.Entry{old, login, expiring}, 2, at(126), nil},
		{"but does when the commit comes before its deadline", []store.Entry{old, login, expiring}, 2, at(124), []store.Entry{expiring}},
		// A clock that stepped back while the app worked: judged at the
		// start, as before.
		{"a commit before the start is judged at the start", []store.Entry{login, justAhead}, 1, at(110), nil},
		{"and one seen further ahead of it was seen before the step", []store.Entry{login, justAhead, meanwhile}, 2, at(110), []store.Entry{meanwhile}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := evictable(tc.entries, login.Hash, tc.limit, devicesNow, tc.commit, devicesTimeouts)
			if len(got) != len(tc.want) {
				t.Fatalf("evicts %d sessions, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].Hash != tc.want[i].Hash {
					t.Fatalf("evicts %s at %d, want %s", got[i].Hash.Short(), i, tc.want[i].Hash.Short())
				}
			}
		})
	}
}
