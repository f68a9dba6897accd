package bolt

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestExpiryInFlight runs the suite of requests in flight across their
// session's deadlines with the sweeper run as its ticker runs it, at the
// time the suite says, with touches deferred and written at once, and
// with the cache on and off.
func TestExpiryInFlight(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"defaults", Options{SweepInterval: -1}},
		{"no cache, touches at once", Options{SweepInterval: -1, CacheRecords: -1, TouchDelay: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.ExpiryInFlight(t, func(t *testing.T) store.Store {
				s, err := Open(t.TempDir()+"/sessions.db", tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				return checkedStore{s, t}
			}, sweepAt)
		})
	}
}

// sweepAt is storetest.Expire: one run of the sweeper at now.
func sweepAt(t *testing.T, s store.Store, now time.Time, _ time.Duration) {
	t.Helper()
	if _, err := s.(checkedStore).sweepDue(now, nil); err != nil {
		t.Fatal(err)
	}
}
