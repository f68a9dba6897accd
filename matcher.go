package caddysession

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

func init() {
	caddy.RegisterModule(MatchSession{})
}

// MatchSession matches requests by their session: whether it has a key, or
// whether the key has one of some values. A request without a live session
// has no keys.
//
// The session is read through one session handler of the same config,
// chosen when the config loads: the single handler of the matcher's
// nearest enclosing route list (its site, or the `route`/`handle` block it
// is in), or, when the matcher names a cookie, the nearest handler with
// that cookie. No candidate, or several, refuses the config. The handler
// need not have run earlier in the route; the session is read once per
// request however many matchers and handlers ask, and only a session of
// that handler's realm matches. A matcher made by a CEL expression
// (`session()`) cannot be placed, so it reads the session of the last
// handler that has run for the request (or, before one has, the first a
// placed matcher loaded), and is an error before one has. A
// store failure is an error (503), never a silent non-match.
type MatchSession struct {
	// The session key to look at.
	Key string `json:"key"`
	// Values to compare the key's value with; the request matches if it is
	// one of them. Empty: the request matches if the session has the key.
	Values []string `json:"values,omitempty"`
	// The name of the session cookie of the handler to read through, when
	// the matcher's route list has several, or none. Default: the single
	// handler of the nearest enclosing route list that has one.
	Cookie string `json:"cookie,omitempty"`

	handler *Handler // set by the session app when it wires the config
}

// CaddyModule returns the Caddy module information.
func (MatchSession) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.session",
		New: func() caddy.Module { return new(MatchSession) },
	}
}

// Provision joins the config's session app, which ties the matcher to
// its handler once the config is provisioned.
func (m *MatchSession) Provision(ctx caddy.Context) error {
	m.Key = strings.ToLower(m.Key)
	app, err := sessionApp(ctx)
	if err != nil {
		return err
	}
	app.addMatcher(m)
	return nil
}

// Validate checks the key.
func (m *MatchSession) Validate() error {
	if !session.ValidKey(m.Key) {
		return fmt.Errorf("session matcher: %w", session.CheckKey(m.Key))
	}
	return nil
}

// Match implements caddyhttp.RequestMatcher; errors count as no match.
func (m MatchSession) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// MatchWithError reports whether the request's session matches.
func (m MatchSession) MatchWithError(r *http.Request) (bool, error) {
	s, err := m.requestState(r)
	if err != nil {
		return false, err
	}
	if s == nil || s.record == nil || s.withdrawn {
		return false, nil
	}
	_, v, ok := session.LookupKey(s.record.Values, m.Key) // either spelling: one key
	if !ok {
		return false, nil
	}
	return len(m.Values) == 0 || slices.Contains(m.Values, v), nil
}

// requestState finds the request's session through the matcher's handler,
// which reuses what a handler of the same realm and store has loaded. A
// matcher with no handler (made by CEL) takes the loaded session. A
// request that the handler's own match (`session /app/*`) does not match
// has no session (nil): the handler gives it none, so no matcher may
// authorize it with the cookie's.
func (m MatchSession) requestState(r *http.Request) (*requestState, error) {
	h := m.handler
	if h == nil {
		s, ok := caddyhttp.GetVar(r.Context(), stateVar).(*requestState)
		if ok && (m.Cookie == "" || s.handler.cookie.Name == m.Cookie) {
			return s, nil
		}
		return nil, caddyhttp.Error(http.StatusInternalServerError,
			fmt.Errorf("session matcher on %q: no session handler has run for this request yet; a CEL session() reads only a session already loaded, so put it after the session handler", m.Key))
	}
	if err := h.app.wired(); err != nil {
		return nil, caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if matched, err := h.gives(r); err != nil || !matched {
		return nil, err
	}
	s, err := h.requestState(r)
	if err != nil {
		return nil, caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	return s, nil
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	session <key> [<value...>] {
//		cookie <name>
//	}
//
// For example `@anon not session user` or `@admins session roles admin`.
// The block is needed only where the matcher's site or route has several
// session handlers, or none (see MatchSession).
func (m *MatchSession) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "session"
	if !d.NextArg() {
		return d.ArgErr()
	}
	m.Key = d.Val()
	if !session.ValidKey(m.Key) {
		return d.Errf("session matcher: %v", session.CheckKey(m.Key))
	}
	m.Values = d.RemainingArgs()
	for d.NextBlock(0) {
		if d.Val() != "cookie" {
			return d.Errf("session matcher: unknown subdirective %q; the block takes only `cookie <name>`", d.Val())
		}
		if m.Cookie != "" {
			return d.Err("session matcher: cookie is given twice")
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		m.Cookie = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// CELLibrary makes the matcher usable in CEL expressions:
//
//	expression session('user')
//	expression session('roles', 'admin', 'editor')
func (MatchSession) CELLibrary(ctx caddy.Context) (cel.Library, error) {
	return caddyhttp.CELMatcherImpl(
		"session",
		"session_match_request_list",
		[]*cel.Type{cel.ListType(cel.StringType)},
		func(data ref.Val) (caddyhttp.RequestMatcherWithError, error) {
			native, err := data.ConvertToNative(stringSliceType)
			if err != nil {
				return nil, err
			}
			args := native.([]string)
			if len(args) == 0 {
				return nil, fmt.Errorf("session() needs a key")
			}
			m := &MatchSession{Key: args[0], Values: args[1:]}
			if err := m.Provision(ctx); err != nil {
				return nil, err
			}
			return m, m.Validate()
		},
	)
}

var stringSliceType = reflect.TypeFor[[]string]()

// Interface guards
var (
	_ caddy.Provisioner                 = (*MatchSession)(nil)
	_ caddy.Validator                   = (*MatchSession)(nil)
	_ caddyhttp.RequestMatcherWithError = (*MatchSession)(nil)
	_ caddyfile.Unmarshaler             = (*MatchSession)(nil)
	_ caddyhttp.CELLibraryProducer      = (*MatchSession)(nil)
)
