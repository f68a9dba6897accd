// Package clock is the time source of the session handler. Production code
// reads the real time; integration tests, which run Caddy in their own
// process, move it by hand to test expiry without sleeping.
package clock

import (
	"sync/atomic"
	"time"
)

var offset atomic.Int64

// Now returns the current time, moved by whatever Advance has added.
func Now() time.Time {
	return time.Now().Add(time.Duration(offset.Load()))
}

// Advance moves the clock forward by d, for tests.
func Advance(d time.Duration) {
	offset.Add(int64(d))
}
