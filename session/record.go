package session

import (
	"maps"
	"time"
	"unicode/utf8"
)

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

	// The session's metadata: what the plugin keeps about a session beside
	// its keys. Stores keep it with the record, and the app never sees it
	// as keys: it reaches the app, if at all, under the reserved
	// X-Session-Meta-* and X-Session-Flash-* names. A record stored before
	// these fields existed reads as false, nil and "".

	// Remembered marks a remember-me session: a persistent cookie and the
	// longer timeouts of the remember configuration.
	Remembered bool
	// Sealed marks a record whose Values, Flash, UserAgent and ClientNet
	// hold their values sealed (seal.go), as stored with seal_values on;
	// SealKey.Open opens them and clears it. Keys stay as they are.
	Sealed bool
	// Flash holds the flash values: set by one response, handed to the app
	// once, on a later request, and then removed. Keys are session keys,
	// lowercase, in a namespace of their own: a flash value "msg" and a
	// key "msg" are two things. nil or empty when there are none; stores
	// read none back as nil. See FlashSize for the limits.
	Flash map[string]string
	// UserAgent is the User-Agent seen when the session was created, for
	// the user's list of devices, "" if none was recorded. Whoever sets it
	// cuts it to MaxUserAgent bytes (TruncateUserAgent); stores keep what
	// they are given. It is stored beside the record and counted in no
	// limit: the client chose it, not the app.
	UserAgent string
	// ClientNet is the network of the client that created the session,
	// for `bind ip`: its address masked to the configured prefix, in CIDR
	// notation ("203.0.113.0/24"), "" if none was recorded. Like the
	// User-Agent it is kept through writes and rotations, and counted in
	// no limit.
	ClientNet string

	// Seal is what a sealed record, or the forward record of a sealed
	// session, keeps beside its fields (seal.go); nil otherwise, so that
	// a plain record costs nothing more. It is never changed once set:
	// records that Clone copies share it.
	Seal *SealInfo
}

// MaxUserAgent is the most bytes of a User-Agent a record keeps: enough to
// tell devices apart, and a bound on what a client can make the store keep
// beside each session.
const MaxUserAgent = 256

// TruncateUserAgent returns ua cut to at most MaxUserAgent bytes, without
// splitting a UTF-8 sequence at the cut.
func TruncateUserAgent(ua string) string {
	if len(ua) <= MaxUserAgent {
		return ua
	}
	cut := MaxUserAgent
	// Back up over the continuation bytes of a sequence the cut splits:
	// at most three.
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(ua[cut]); i++ {
		cut--
	}
	return ua[:cut]
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
// measure that Limits.SessionSize bounds. Flash values are not in it (see
// FlashSize), nor is the UserAgent.
func (r *Record) Size() int { return pairsSize(r.Values) }

// FlashSize is the number of bytes the flash values take with their keys,
// measured as Size measures keys. Limits apply to flash values as to keys,
// and to both together: a flash value is at most Limits.ValueSize, and a
// session holds at most Limits.Keys keys and flash values together
// (len(Values)+len(Flash)) and Limits.SessionSize bytes of them
// (Size()+FlashSize()), so that flash values cannot carry past the limits
// what keys may not.
func (r *Record) FlashSize() int { return pairsSize(r.Flash) }

func pairsSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// Clone returns a deep copy of the record. A nil Flash stays nil, so that
// cloning a session without flash values, as every read does, allocates
// nothing more for them.
func (r *Record) Clone() *Record {
	c := *r
	if r.Successor != nil {
		next := *r.Successor
		c.Successor = &next
	}
	// maps.Clone copies the map's table as it is, without hashing each
	// key again as a loop of inserts does.
	c.Values = maps.Clone(r.Values)
	if c.Values == nil {
		c.Values = map[string]string{}
	}
	c.Flash = maps.Clone(r.Flash)
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
	// RememberIdle and RememberAbsolute replace Idle and Absolute for a
	// remembered session (Record.Remembered), wherever a record is judged
	// or touched. Zero: the session is judged as any other.
	RememberIdle, RememberAbsolute time.Duration
}

// Default timeouts, in line with OWASP's guidance for low-risk
// applications: 30 minutes idle, 12 hours absolute.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultTouchInterval   = time.Minute
)

// NewRecord returns an empty record created at now, not remembered:
// SetRemembered makes it so.
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
// timeout in the configuration takes effect at once. A remembered record is
// judged by the remember timeouts.
func (t Timeouts) Expired(r *Record, now time.Time) bool {
	return r.Expired(now) ||
		!now.Before(r.Created.Add(t.absolute(r))) ||
		!now.Before(r.LastSeen.Add(t.idle(r)))
}

// NeedsTouch reports whether a request at now should push the record's idle
// deadline back: at most once per touch interval, or when the clock went
// back since the last touch (SeenAhead).
func (t Timeouts) NeedsTouch(r *Record, now time.Time) bool {
	return now.Sub(r.LastSeen) >= t.TouchInterval || r.SeenAhead(now)
}

// MaxClockLag is how far a record's LastSeen may be after a request's
// time before the request's clock is taken to have gone back (SeenAhead).
// Requests in flight together, and the clocks of instances sharing a
// store, differ by less.
const MaxClockLag = time.Minute

// SeenAhead reports whether the record was last seen more than
// MaxClockLag after now: the wall clock stepped back since (an NTP
// correction of a clock that ran ahead), as a stored time has no
// monotonic reading to guard it. A request that began before the last
// touch must not move LastSeen back, but one made after a step back
// must: otherwise no use touches the session until the clock has caught
// up with its LastSeen, for as long as the step, and meanwhile Redis,
// whose TTL runs on its own clock, drops a session in use once
// idle_timeout has passed since its last touch.
func (r *Record) SeenAhead(now time.Time) bool {
	return r.LastSeen.Sub(now) > MaxClockLag
}

// Touch records a use of the session at now: it moves LastSeen and the
// idle deadline (by the remember timeouts for a remembered record), which
// never passes the absolute deadline.
func (t Timeouts) Touch(r *Record, now time.Time) {
	r.LastSeen = now
	r.IdleDeadline = now.Add(t.idle(r))
	if r.IdleDeadline.After(r.AbsoluteDeadline) {
		r.IdleDeadline = r.AbsoluteDeadline
	}
}
