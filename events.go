package caddysession

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"

	"github.com/caddy-session/caddy-session/session"
)

// The events a session handler emits through Caddy's events app, for audit
// logs and webhooks ("a new device logged in"). Their origin is the
// handler, http.handlers.session. Their data never holds a session ID nor
// a session's values, except the value of the identity key: see emit.
const (
	// eventCreated: a session started (a first key set on an anonymous
	// request, or keys set beside a logout).
	eventCreated = "session.created"
	// eventRenewed: a session got a new ID, keeping its data: a login on a
	// session that already existed, a change of another renew_on key, or
	// X-Session-Renew. Its data says whether the identity changed.
	eventRenewed = "session.renewed"
	// eventDestroyed: one or more sessions ended before their expiry; its
	// cause says how.
	eventDestroyed = "session.destroyed"
	// eventRemembered: a session became persistent, or went back to a
	// browser-session cookie, by X-Session-Remember (remember.go), after
	// the session.created or session.renewed of its new ID.
	eventRemembered = "session.remembered"
)

// The causes of session.destroyed, as the destroyed metric labels them.
// Expiry is among them only as causeExpired (remember.go, counted by the
// expired metric), for a session that X-Session-Remember: false ended: no
// handler sees any other session expire (an expired session is one the
// store no longer returns, and bolt's sweep and Redis's TTL remove it
// without any handler's knowledge).
const (
	causeLogout    = "logout"     // X-Session-Destroy
	causeLogoutAll = "logout_all" // X-Session-Destroy-All
	causeAdmin     = "admin"      // the admin API's revocations
	causeEvicted   = "evicted"    // max_sessions_per_identity: a login ended the user's least recently seen session
	causeRevoked   = "revoked"    // X-Session-Revoke: a session of the user ended another
)

// sessionEvent is what an event tells about a session, as its emitter
// knows it. Emitters fill it in on the stack; emit builds the event's data
// from it only when something can observe the event, so that a handler
// whose config subscribes to no session event pays nothing for events.
type sessionEvent struct {
	// hash is the session's, or zero when the event is about several
	// sessions (a revocation by identity), which no ID hashes to.
	hash session.Hash
	// realm is the realm of the session(s), "" if unknown.
	realm string
	// record is the session as it stands after the change (before it, for
	// session.destroyed), whose identity value the event carries; nil to
	// carry identity, if hasIdentity, instead.
	record      *session.Record
	identity    string
	hasIdentity bool

	// session.renewed: the hash the session had, and the record as it
	// was, to tell whether the identity changed.
	previous session.Hash
	before   *session.Record
	// session.destroyed: how, and how many sessions ended.
	cause    string
	sessions int
	// session.remembered: whether the session is now persistent.
	remembered bool
}

// emit sends the named event through Caddy's events app, if anything can
// observe it: a subscriber to that name or to every event, or the events
// app's debug log. Subscribers run synchronously, in the request that
// caused the event, after its store transaction and before its response.
//
// The event's data:
//
//   - session: the short hash of the session (Hash.Short), never the ID;
//     absent when the event is about several sessions;
//   - store and backend: the store's name and its backend (bolt, redis);
//   - realm: the realm of the session(s);
//   - identity: the value of the identity key, absent when the session has
//     none; no other value of the session is ever included;
//   - session.renewed: previous, the short hash of the replaced ID, and
//     identity_changed, true when the renewal was a login, a change of
//     user or the removal of the identity key;
//   - session.destroyed: cause (logout, logout_all, admin, evicted,
//     revoked, expired) and sessions, how many ended;
//   - session.remembered: remembered, true or false.
//
// The event is dispatched with the handler's own context, not the
// request's: subscribers see no request placeholders (which hold the
// session's values), and a client that hangs up does not stop delivery.
func (h *Handler) emit(name string, ev sessionEvent) {
	if h.events == nil || !h.events.ShouldEmit(name) {
		return
	}
	data := map[string]any{
		"store":   h.storeName,
		"backend": h.backend,
		"realm":   ev.realm,
	}
	if ev.hash != (session.Hash{}) {
		data["session"] = ev.hash.Short()
	}
	identity, ok := ev.identity, ev.hasIdentity
	if ev.record != nil {
		identity, ok = h.rules.identityOf(ev.record)
	}
	if ok {
		data["identity"] = identity
	}
	switch name {
	case eventRenewed:
		data["previous"] = ev.previous.Short()
		was, had := "", false
		if ev.before != nil {
			was, had = h.rules.identityOf(ev.before)
		}
		data["identity_changed"] = had != ok || was != identity
	case eventDestroyed:
		data["cause"] = ev.cause
		data["sessions"] = ev.sessions
	case eventRemembered:
		data["remembered"] = ev.remembered
	}
	h.events.Emit(h.ctx, name, data)
}

// listening reports whether anything can observe the named event, for an
// emitter that must do work (a store read) to fill its sessionEvent.
func (h *Handler) listening(name string) bool {
	return h.events != nil && h.events.ShouldEmit(name)
}

// eventsApp returns the config's events app. Caddy's HTTP app loads it
// into every config, so it is there whether or not the config has an
// `events` block; without subscribers its ShouldEmit is false. A handler
// provisioned with a context that has no config (the package's unit tests
// and benchmarks) gets none, and emits nothing.
func eventsApp(ctx caddy.Context) (app *caddyevents.App, err error) {
	defer func() {
		if recover() != nil { // caddy.Context.App needs a config
			app, err = nil, nil
		}
	}()
	loaded, err := ctx.App("events")
	if err != nil {
		return nil, fmt.Errorf("loading the events app: %v", err)
	}
	return loaded.(*caddyevents.App), nil
}
