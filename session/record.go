package session

import "time"

// Record is the server-side state of one session.
//
// The deadlines are computed from the Timeouts in force when the record was
// last written and stored with it, so a store can expire a record (bbolt's
// sweep, Redis's TTL) without knowing the configuration.
type Record struct {
	// Created is when the session was created; a renewal keeps it.
	Created time.Time
	// LastSeen is when a request of the session was last recorded. It is
	// refreshed at most once per touch interval, not on every request.
	LastSeen time.Time
	// IdleDeadline is when the session expires unless it is used again.
	IdleDeadline time.Time
	// AbsoluteDeadline is when the session expires however much it is used.
	AbsoluteDeadline time.Time
	// Values are the session's keys and values. Keys are lowercase.
	Values map[string]string
	// Realm scopes the session: a handler adopts only records of its own
	// realm, and revocations act within one realm. "" marks a record stored
	// before realms existed, which any realm adopts until it expires; the
	// first write stamps the writer's realm on it.
	Realm string
	// Successor, when not nil, makes this a forward record: the session was
	// given a new ID and lives on under *Successor. A forward record holds
	// no values, is never adopted by a request, and lives only until its
	// deadlines (ForwardTTL after the rotation); it lets a request that
	// loaded the session before the rotation carry its changes over.
	Successor *Hash
}

// ForwardTTL bounds how long a forward record outlives the rotation that
// left it: a request in flight longer than this loses its changes.
const ForwardTTL = 2 * time.Minute

// Forwarded reports whether r is a forward record.
func (r *Record) Forwarded() bool { return r.Successor != nil }

// ExpiresAt is the earlier of the two deadlines.
func (r *Record) ExpiresAt() time.Time {
	if r.IdleDeadline.Before(r.AbsoluteDeadline) {
		return r.IdleDeadline
	}
	return r.AbsoluteDeadline
}

// Expired reports whether the record's stored deadlines have passed at now.
func (r *Record) Expired(now time.Time) bool {
	return !now.Before(r.ExpiresAt())
}

// Size is the number of bytes the record's keys and values take, the
// measure that Limits.SessionSize bounds.
func (r *Record) Size() int {
	n := 0
	for k, v := range r.Values {
		n += len(k) + len(v)
	}
	return n
}

// Clone returns a deep copy of the record.
func (r *Record) Clone() *Record {
	c := *r
	if r.Successor != nil {
		next := *r.Successor
		c.Successor = &next
	}
	c.Values = make(map[string]string, len(r.Values))
	for k, v := range r.Values {
		c.Values[k] = v
	}
	return &c
}

// Timeouts are the expiry rules of sessions.
type Timeouts struct {
	// Idle ends a session that has not been used for this long.
	Idle time.Duration
	// Absolute ends a session this long after it was created.
	Absolute time.Duration
	// TouchInterval is how often a session in use has its idle deadline
	// pushed back. Pushing it on every request would cost a store write per
	// request; the price is that a session may expire up to TouchInterval
	// earlier than Idle after its last request.
	TouchInterval time.Duration
}

// Default timeouts, in line with OWASP's guidance for low-risk
// applications: 30 minutes idle, 12 hours absolute.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultTouchInterval   = time.Minute
)

// NewRecord returns an empty record created at now.
func (t Timeouts) NewRecord(now time.Time) *Record {
	r := &Record{
		Created:          now,
		AbsoluteDeadline: now.Add(t.Absolute),
		Values:           map[string]string{},
	}
	t.Touch(r, now)
	return r
}

// Expired reports whether the record has expired at now, by its stored
// deadlines or by the current timeouts, whichever is stricter: shortening a
// timeout in the configuration takes effect at once.
func (t Timeouts) Expired(r *Record, now time.Time) bool {
	return r.Expired(now) ||
		!now.Before(r.Created.Add(t.Absolute)) ||
		!now.Before(r.LastSeen.Add(t.Idle))
}

// NeedsTouch reports whether a request at now should push the record's idle
// deadline back: at most once per touch interval.
func (t Timeouts) NeedsTouch(r *Record, now time.Time) bool {
	return now.Sub(r.LastSeen) >= t.TouchInterval
}

// Touch records a use of the session at now: it moves LastSeen and the
// idle deadline, which never passes the absolute deadline.
func (t Timeouts) Touch(r *Record, now time.Time) {
	r.LastSeen = now
	r.IdleDeadline = now.Add(t.Idle)
	if r.IdleDeadline.After(r.AbsoluteDeadline) {
		r.IdleDeadline = r.AbsoluteDeadline
	}
}
