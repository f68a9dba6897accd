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
// The session is read through the session handler whose cookie has the
// configured name; it need not have run earlier in the route, and the
// session is read once per request however many matchers and handlers ask.
// A store failure is an error (503), never a silent non-match.
type MatchSession struct {
	// The session key to look at.
	Key string `json:"key"`
	// Values to compare the key's value with; the request matches if it is
	// one of them. Empty: the request matches if the session has the key.
	Values []string `json:"values,omitempty"`
	// The name of the session cookie, which picks the session handler (and
	// so the store) to read from. Default: `sid`.
	Cookie string `json:"cookie,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (MatchSession) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.session",
		New: func() caddy.Module { return new(MatchSession) },
	}
}

// Provision sets defaults.
func (m *MatchSession) Provision(caddy.Context) error {
	m.Key = strings.ToLower(m.Key)
	if m.Cookie == "" {
		m.Cookie = session.DefaultCookieName
	}
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
	if s.record == nil {
		return false, nil
	}
	v, ok := s.record.Values[m.Key]
	if !ok {
		return false, nil
	}
	return len(m.Values) == 0 || slices.Contains(m.Values, v), nil
}

// requestState finds the request's session: the one the route's session
// handler has loaded, or else one loaded now through the newest handler
// with the matcher's cookie.
func (m MatchSession) requestState(r *http.Request) (*requestState, error) {
	if s, ok := caddyhttp.GetVar(r.Context(), stateVar).(*requestState); ok && s.handler.cookie.Name == m.Cookie {
		return s, nil
	}
	h := handlerForCookie(m.Cookie)
	if h == nil {
		return nil, caddyhttp.Error(http.StatusInternalServerError,
			fmt.Errorf("session matcher: no session handler with cookie %q is loaded; add a session directive", m.Cookie))
	}
	s, err := h.requestState(r)
	if err != nil {
		return nil, caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	return s, nil
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	session <key> [<value...>]
//
// For example `@anon not session user` or `@admins session roles admin`.
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
	if d.NextBlock(0) {
		return d.Err("the session matcher takes no block")
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
