package caddysession

import (
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// step is what one response does to its session: the request's part of
// the session's lifecycle.
type step int

const (
	stepNone    step = iota // nothing to store: the read path
	stepTouch               // push the idle deadline back
	stepChange              // set or delete keys, keeping the ID
	stepRotate              // give the session a new ID, with any changes
	stepCreate              // start a session
	stepDestroy             // end the session
	stepRestart             // end the session and start a new one with the keys set
)

// newID reports whether the step issues a new session ID.
func (s step) newID() bool { return s == stepRotate || s == stepCreate || s == stepRestart }

// ends reports whether the step ends the session the request presented.
func (s step) ends() bool { return s == stepDestroy || s == stepRestart }

// touches reports whether the step keeps the session the request presented
// and, unless told not to, moves its idle deadline.
func (s step) touches() bool { return s == stepTouch || s == stepChange || s == stepRotate }

// plan is what the commit of one response will do.
type plan struct {
	step step
	// endAll ends every session of the user (the value of the identity
	// key) before the step: X-Session-Destroy-All.
	endAll bool
	patch  *session.Patch
	// noTouch keeps the session's idle deadline where it was: the response
	// said X-Session-Touch: false, or the request matches no_touch.
	noTouch bool
	// dropped says why commands were dropped without being applied.
	dropped string
}

// rules are the settings of a handler that decide a plan.
type rules struct {
	timeouts session.Timeouts
	limits   session.Limits
	renewOn  []string
	identity string
}

// Reasons for dropping commands, as metric labels.
const (
	droppedRotatedAway    = "rotated_away"     // the request presented an ID that had been given a successor
	droppedEnded          = "ended"            // the session ended while the request was in flight
	droppedIdentityChange = "identity_changed" // a login or logout happened while the request was in flight
)

// planCommit decides what the response does to the session the request
// loaded (nil: none), at now. moved reports that the request presented an
// ID with a forward record, which may not start a session. A
// *session.RuleError refuses the whole batch: nothing is done.
func planCommit(loaded *session.Record, moved bool, patch *session.Patch, now time.Time, r rules) (plan, error) {
	p := plan{patch: patch, noTouch: patch != nil && patch.NoTouch}
	switch {
	case loaded == nil && !patch.Starts():
		// Deleting, renewing or ending nothing leaves the request
		// anonymous: only setting a key or a flash value starts a
		// session.
	case loaded == nil && moved:
		p.dropped = droppedRotatedAway
	case loaded == nil:
		p.step = stepCreate
	case patch != nil && (patch.Destroy || patch.DestroyAll):
		return planEnd(p, r)
	case r.rotates(loaded, patch):
		p.step = stepRotate
	case patch.Changes():
		p.step = stepChange
	case r.timeouts.NeedsTouch(loaded, now) && !p.noTouch:
		p.step = stepTouch
	}
	return p, nil
}

// planEnd plans a logout, or a logout everywhere, with keys or flash
// values set in the same response starting a new session ("you have been
// logged out"). They are checked first, so that a refused batch ends no
// session at all.
func planEnd(p plan, r rules) (plan, error) {
	p.endAll = p.patch.DestroyAll
	p.step = stepDestroy
	if !p.patch.Starts() {
		return p, nil
	}
	fresh := &session.Record{}
	if err := p.patch.Starting().ApplyTo(fresh, r.limits); err != nil {
		return plan{}, err
	}
	p.step = stepRestart
	return p, nil
}

// rotates reports whether the patch gives the session a new ID: asked for,
// a change of a renew_on key such as a login or a logout that keeps the
// rest of the session, or a change of its persistence
// (X-Session-Remember). Keys match in either spelling of '_' and '-', as
// the header protocol names them.
func (r rules) rotates(loaded *session.Record, p *session.Patch) bool {
	return p != nil && (p.Renew || p.Moves(loaded, r.renewOn))
}

// identityOf is the value of the identity key in rec, "" if none; none
// in a record still sealed, whose value is not known.
func (r rules) identityOf(rec *session.Record) (string, bool) {
	if rec.Sealed {
		return "", false
	}
	return rec.IdentityValue(r.identity)
}
