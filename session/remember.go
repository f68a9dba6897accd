package session

import "time"

// Remember-me: a session the app makes persistent with
// X-Session-Remember: true, whose cookie outlives the browser session and
// whose deadlines follow the longer timeouts of the remember configuration
// (Timeouts.RememberIdle and RememberAbsolute).

// Remember is what a response asks of the session's persistence.
type Remember int8

const (
	// RememberAsIs: the response did not say; the session stays as it is.
	RememberAsIs Remember = iota
	// RememberOn: X-Session-Remember: true, a persistent session.
	RememberOn
	// RememberOff: X-Session-Remember: false, back to a browser-session
	// cookie and the normal timeouts.
	RememberOff
)

// Switches reports whether asking for r changes rec's persistence: only
// then does it give the session a new ID. Asking for what the session
// already is does nothing.
func (r Remember) Switches(rec *Record) bool {
	return r != RememberAsIs && (r == RememberOn) != rec.Remembered
}

// Default timeouts of remembered sessions, unless configured: two weeks
// unused, a month in all.
const (
	DefaultRememberIdleTimeout     = 14 * 24 * time.Hour
	DefaultRememberAbsoluteTimeout = 30 * 24 * time.Hour
)

// idle is the idle timeout that applies to rec: RememberIdle for a
// remembered session, when set, else Idle.
func (t Timeouts) idle(rec *Record) time.Duration {
	if rec.Remembered && t.RememberIdle > 0 {
		return t.RememberIdle
	}
	return t.Idle
}

// absolute is the absolute timeout that applies to rec: RememberAbsolute
// for a remembered session, when set, else Absolute.
func (t Timeouts) absolute(rec *Record) time.Duration {
	if rec.Remembered && t.RememberAbsolute > 0 {
		return t.RememberAbsolute
	}
	return t.Absolute
}

// AbsoluteEnd is when rec ends at the latest: its stored absolute
// deadline, or its creation plus the absolute timeout that now applies if
// that is sooner (a config that shortened the timeout since the deadline
// was stored ends the session then: Expired). A persistent cookie lasts
// until then, and no longer.
func (t Timeouts) AbsoluteEnd(rec *Record) time.Time {
	end := rec.Created.Add(t.absolute(rec))
	if rec.AbsoluteDeadline.Before(end) {
		return rec.AbsoluteDeadline
	}
	return end
}

// Deadlines are the idle and absolute deadlines that apply to rec under
// these timeouts: its stored ones, or sooner ones that timeouts shortened
// since it was written give it (Expired ends it at the earlier of the
// two). The idle deadline never passes the absolute one. They are what
// an operator is shown: the stored ones may no longer be kept to.
func (t Timeouts) Deadlines(rec *Record) (idle, absolute time.Time) {
	absolute = t.AbsoluteEnd(rec)
	idle = rec.LastSeen.Add(t.idle(rec))
	if rec.IdleDeadline.Before(idle) {
		idle = rec.IdleDeadline
	}
	if absolute.Before(idle) {
		idle = absolute
	}
	return idle, absolute
}

// SetRemembered makes rec remembered or not, and moves its deadlines to
// the timeouts that now apply: the absolute deadline to Created plus the
// absolute timeout, the idle deadline to LastSeen plus the idle timeout
// (never past the absolute deadline). Created and LastSeen stay: a session
// remembered after a day has a month from its creation, not from then.
// Going back to the normal timeouts may put the deadlines in the past: the
// caller checks Expired.
func (t Timeouts) SetRemembered(rec *Record, on bool) {
	rec.Remembered = on
	rec.AbsoluteDeadline = rec.Created.Add(t.absolute(rec))
	rec.IdleDeadline = rec.LastSeen.Add(t.idle(rec))
	if rec.IdleDeadline.After(rec.AbsoluteDeadline) {
		rec.IdleDeadline = rec.AbsoluteDeadline
	}
}

// rememberOf is the Remember that X-Session-Remember: on asks for.
func rememberOf(on bool) Remember {
	if on {
		return RememberOn
	}
	return RememberOff
}
