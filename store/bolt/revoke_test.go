package bolt

import (
	"testing"

	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

// TestRevoke runs the suite of a revocation by user racing renewals: bolt
// revokes in one write transaction, which a renewal waits for and then
// finds the session gone.
func TestRevoke(t *testing.T) {
	storetest.Revoke(t, func(t *testing.T) store.Store {
		return checkedStore{openTest(t), t}
	}, pauseBolt)
}
