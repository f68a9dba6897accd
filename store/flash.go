package store

import "github.com/caddy-session/caddy-session/session"

// Flash values are taken by an Update of their own (TakeFlash), before
// the request goes on, and put back by another (RestoreFlash) if its
// response fails. Both are decided here, on the record the store read in
// the transaction that writes the outcome, so that a store that runs
// Decide's outcomes atomically takes each flash value exactly once: of two
// requests that take at once, the second reads the record the first
// wrote, which holds none.

// movesFlash reports whether u takes flash values or puts some back.
func movesFlash(u Update) bool {
	return u.TakeFlash || len(u.RestoreFlash) > 0
}

// flashStep takes the flash values of rec, or puts taken ones back, as u
// asks, and returns what it took and whether it changed rec. A take wins
// over a restore: an Update asks for one of them.
func flashStep(u Update, rec *session.Record) (taken map[string]string, changed bool) {
	switch {
	case u.TakeFlash:
		taken = session.TakeFlash(rec)
		return taken, taken != nil
	case len(u.RestoreFlash) > 0:
		return nil, session.RestoreFlash(rec, u.RestoreFlash)
	}
	return nil, false
}

// restoresOnly reports whether u only puts back flash values that a take
// removed: it may reach a successor whose identity is not the one the
// request saw (a login rotated the session since the take), since that
// rotation would have carried the values there had they not been taken.
// It is the request's undo of its own take, not a change of its: nothing
// else of the request lands there.
func restoresOnly(u Update) bool {
	return len(u.RestoreFlash) > 0 && !u.TakeFlash && touchOnly(u)
}
