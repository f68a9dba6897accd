package store

import "github.com/caddy-session/caddy-session/session"

// Remember-me in Decide. X-Session-Remember (Patch.Remember) takes effect
// only on a record written whole under a new hash: a session that starts
// (create, or keys set beside a logout) or that gets a new ID (keep with
// NewHash). A persistent cookie is worth more to a thief than a
// browser-session one, so a session never becomes remembered under an ID
// that was issued for a browser session, and a store never has to change
// the persistence or the absolute deadline of a record in place. The
// handler asks for a new ID whenever Remember changes the persistence of
// the session it loaded; a request that raced another's change (the
// session it reaches is already as asked, or moved on) has the rest of its
// commands applied as usual.

// remember gives rec, a record u writes under a new hash, the persistence
// u's patch asks for, with the deadlines of the timeouts that then apply,
// and reports whether that changed anything.
func remember(u Update, rec *session.Record) bool {
	if u.Patch == nil || !u.Patch.Remember.Switches(rec) {
		return false
	}
	u.Timeouts.SetRemembered(rec, u.Patch.Remember == session.RememberOn)
	return true
}

// expire ends the session under o.At, which X-Session-Remember: false
// returned to the normal timeouts after it had outlived them (judged as the
// session stood when the request came: the request's own use does not
// revive it; and by the absolute deadline when the update is applied as
// well, so that a forget in flight across it writes nothing). It is
// removed, with nothing written in its place (a forward record would lead
// nowhere), as an expired record is.
func (o Outcome) expire(followed bool) Outcome {
	o.Remove = true
	o.Result = Result{Followed: followed, Expired: true}
	return o
}
