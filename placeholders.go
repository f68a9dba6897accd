package caddysession

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

// The session as placeholders: {http.session.<key>} for each key, and
// {http.session_hash}, the short hash of its ID. They are answered by a
// provider the request's replacer asks when it needs one (Replacer.Map),
// rather than set into its map of static values: four sets a read, the map
// growing to hold them, were a tenth of the read path's own work, for
// placeholders that most configurations never read.
const (
	placeholderPrefix = "http.session."
	placeholderHash   = "http.session_hash"
)

// placeholdersVar holds a request's sessionPlaceholders among its vars,
// so that every session handler of the request publishes through the one
// provider: the last to publish is what the placeholders show, as when
// each set them.
const placeholdersVar = "\x00caddy-session placeholders"

// sessionPlaceholders is the provider of a request's session placeholders.
// The view is swapped whole: a handler may read the placeholders while
// another publishes (a response the commit changed).
type sessionPlaceholders struct {
	view  atomic.Pointer[placeholderView]
	first placeholderView // the first view, without an allocation of its own
}

// placeholderView is a session as its placeholders show it; values is
// the record's own map, which is never changed once loaded or stored.
type placeholderView struct {
	hash   session.Hash
	values map[string]string
}

func (p *sessionPlaceholders) replace(name string) (any, bool) {
	v := p.view.Load()
	if v == nil || !strings.HasPrefix(name, "http.session") {
		return nil, false
	}
	if name == placeholderHash {
		return v.hash.Short(), true
	}
	key, ok := strings.CutPrefix(name, placeholderPrefix)
	if !ok {
		return nil, false
	}
	value, ok := v.values[key]
	return value, ok
}

// setPlaceholders publishes the loaded session, if any, before the
// handlers after the session's run; a request without one leaves them as
// they are (empty, or the session of an outer handler of another cookie,
// store or realm), unless this handler refused the very session they
// show (refused: its timeouts, binding or on_store_error serve the
// request as anonymous), which then shows no more: the `vars` matcher or
// `request_header` after a stricter nested handler would otherwise still
// find the user in them. The provider is made and kept among the
// request's vars here, never later: once reverse_proxy has started, its
// dialer reads the vars from goroutines of its own, and a write to them
// would race those reads.
func (s *requestState) setPlaceholders() {
	r := s.request
	p, ok := caddyhttp.GetVar(r.Context(), placeholdersVar).(*sessionPlaceholders)
	if s.record == nil {
		if s.refused && ok {
			p.view.Store(nil)
		}
		return
	}
	if ok {
		p.view.Store(&placeholderView{hash: s.hash, values: s.record.Values})
		return
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	p = &sessionPlaceholders{first: placeholderView{hash: s.hash, values: s.record.Values}}
	p.view.Store(&p.first)
	caddyhttp.SetVar(r.Context(), placeholdersVar, p)
	repl.Map(p.replace)
}

// updatePlaceholders makes later readers (access logs, handlers that run
// after the response) see the session as it stands after the commit: rec
// under hash, or none if rec is nil. A request that had no session when
// its handlers ran has no provider, and may not make one now
// (setPlaceholders): the session it started is set among the replacer's
// static values, which a lock guards.
func (s *requestState) updatePlaceholders(hash session.Hash, rec *session.Record) {
	r := s.request
	if p, ok := caddyhttp.GetVar(r.Context(), placeholdersVar).(*sessionPlaceholders); ok {
		if rec == nil {
			p.view.Store(nil)
		} else {
			p.view.Store(&placeholderView{hash: hash, values: rec.Values})
		}
		return
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok || rec == nil {
		return
	}
	repl.Set(placeholderHash, hash.Short())
	// Beside those another handler's commit set for the request (nested
	// handlers of two sessions, each starting one).
	set, _ := repl.Get(placeholdersSetKey)
	before, _ := set.([]string)
	names := append(slices.Clip(before), placeholderHash)
	for k, v := range rec.Values {
		repl.Set(placeholderPrefix+k, v)
		names = append(names, placeholderPrefix+k)
	}
	repl.Set(placeholdersSetKey, names)
}

// placeholdersSetKey keeps, among the replacer's static values, the names
// updatePlaceholders set there, which hidePlaceholders empties.
const placeholdersSetKey = "\x00caddy-session placeholders set"

// hidePlaceholders empties what the placeholders show of the request's
// session, once the session is taken off the request (withdraw,
// leaveToErrorRoutes): its keys and hash (also those a commit set for a
// session it started), and its CSRF token, which
// guardCSRF set among the replacer's static values and which a template
// of the error routes would render into a page. They then read as for a
// request without a session.
func hidePlaceholders(r *http.Request) {
	if p, ok := caddyhttp.GetVar(r.Context(), placeholdersVar).(*sessionPlaceholders); ok {
		p.view.Store(nil)
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return
	}
	if _, set := repl.Get(placeholderCSRFToken); set {
		repl.Set(placeholderCSRFToken, "")
	}
	// The session a commit started for a request that had none (a login
	// whose 503 carries its cookie: the store took it, its replicas did
	// not acknowledge it in time).
	if set, ok := repl.Get(placeholdersSetKey); ok {
		for _, name := range set.([]string) {
			repl.Set(name, "")
		}
	}
}
