package redis

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestExpiryInFlight runs the suite of requests in flight across their
// session's deadlines on a single server and on a Cluster, with the local
// cache on, Redis's TTLs run down by the time the suite says has passed:
// Redis's clock is not the suite's.
func TestExpiryInFlight(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		inspectors := map[*Store]*Store{}
		storetest.ExpiryInFlight(t, func(t *testing.T) store.Store {
			s := b.newStore(t, Options{})
			inspector := b.inspector(t, s)
			flush(t, inspector)
			inspectors[s] = inspector
			return s
		}, func(t *testing.T, s store.Store, _ time.Time, elapsed time.Duration) {
			t.Helper()
			ageKeys(t, inspectors[s.(*Store)], elapsed)
		})
	})
}

// ageKeys runs the TTL of every key down by d, as Redis's clock moving
// that far would, deleting those it runs out, as Redis expires them.
func ageKeys(t *testing.T, s *Store, d time.Duration) {
	t.Helper()
	for _, k := range keys(t, s) {
		left := pttl(t, s, k)
		switch {
		case left < 0: // no TTL
		case left <= d:
			do(t, s, "DEL", k)
		default:
			do(t, s, "PEXPIRE", k, millis(left-d))
		}
	}
}
