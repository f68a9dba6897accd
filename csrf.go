package caddysession

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// csrf: protection from cross-site request forgery, as the OWASP CSRF
// cheat sheet describes it. Unsafe requests, with or without a session,
// must come from the site's own pages by Fetch Metadata, or else by
// Origin or Referer (csrfJudge); with token on, those of a session must
// also echo the session's token (csrftoken.go). A refused request gets a
// 403 before anything else happens: the app is not called, and the
// session is neither touched nor changed. A handler without csrf pays one
// nil check.

// CSRFConfig turns on the protection from cross-site request forgery.
type CSRFConfig struct {
	// Origins other than the request's own whose pages may send unsafe
	// requests, such as a sibling subdomain's login form: `scheme://host`
	// or `scheme://host:port`, exactly. Default: none.
	TrustedOrigins []string `json:"trusted_origins,omitempty"`

	// Accept requests with `Sec-Fetch-Site: same-site`: from a page of
	// another host of the same registrable domain (a sibling subdomain),
	// whatever its origin. Default: false; only trusted_origins are.
	AllowSameSite bool `json:"allow_same_site,omitempty"`

	// Refuse unsafe requests that carry none of `Sec-Fetch-Site`, `Origin`
	// and `Referer`. Every browser of the last years sends one of them
	// on a cross-site POST; other clients (curl, scripts, webhooks) often
	// send none. Default: false; such requests pass.
	Strict bool `json:"strict,omitempty"`

	// The synchronizer token: unsafe requests of a session must also
	// echo the session's token, which the app gets as the request header
	// `X-Session-Meta-Csrf-Token` (with header_prefix) and the
	// placeholder `{http.session_meta.csrf_token}`. Default: off.
	Token *CSRFTokenConfig `json:"token,omitempty"`

	// Requests that are not checked at all, such as webhooks and APIs
	// with their own authentication: matcher sets, as in a route's
	// `match` (a request matches if one set does). Default: none.
	ExemptRaw caddyhttp.RawMatcherSets `json:"exempt,omitempty" caddy:"namespace=http.matchers"`
}

// csrfGuard is a provisioned CSRFConfig.
type csrfGuard struct {
	trusted  map[string]bool // normalized origins
	sameSite bool
	strict   bool
	exempt   caddyhttp.MatcherSets // nil: none
	token    *tokenCheck           // nil: no token check
	tokenAs  string                // the request header of the token, for the app
}

// placeholderCSRFToken holds the session's token.
const placeholderCSRFToken = "http.session_meta.csrf_token"

// metaCSRFToken is the reserved key whose request header carries the
// session's token: X-Session-Meta-Csrf-Token.
const metaCSRFToken = "meta-csrf-token"

// provisionCSRF checks the csrf settings and loads its matchers.
func (h *Handler) provisionCSRF(ctx caddy.Context) error {
	c := h.CSRF
	if c == nil {
		return nil // h.csrf stays nil: nothing is checked
	}
	g := &csrfGuard{trusted: map[string]bool{}, sameSite: c.AllowSameSite, strict: c.Strict}
	for _, o := range c.TrustedOrigins {
		norm, err := parseTrustedOrigin(o)
		if err != nil {
			return err
		}
		g.trusted[norm] = true
	}
	if len(c.ExemptRaw) > 0 {
		mods, err := ctx.LoadModule(c, "ExemptRaw")
		if err != nil {
			return fmt.Errorf("loading csrf exempt matchers: %v", err)
		}
		if err := g.exempt.FromInterface(mods); err != nil {
			return err
		}
	}
	if c.Token != nil {
		t, err := c.Token.build(h.protocol)
		if err != nil {
			return err
		}
		g.token = t
		g.tokenAs = h.protocol.HeaderName(metaCSRFToken)
	}
	h.csrf = g
	return nil
}

// parseTrustedOrigin checks an origin of trusted_origins and returns it
// normalized.
func parseTrustedOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.Contains(u.Host, "*") ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("csrf: trusted origin %q must be scheme://host or scheme://host:port, with http or https and nothing after the host, such as https://app.example.com", o)
	}
	return normalOrigin(u.Scheme, u.Host), nil
}

// normalOrigin is the origin of scheme and host (with its port, if any)
// as compared: lowercase, without the scheme's default port.
func normalOrigin(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	return scheme + "://" + host
}

// requestOrigin is the origin the client sent the request to, as Caddy
// sees it: the scheme of the connection and the Host header, or, from a
// trusted proxy (the server's trusted_proxies), the first
// X-Forwarded-Proto and X-Forwarded-Host, as reverse_proxy trusts them.
func requestOrigin(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
			scheme = p
		}
		if fh := firstValue(r.Header.Get("X-Forwarded-Host")); fh != "" {
			host = fh
		}
	}
	return normalOrigin(scheme, host)
}

// firstValue is the first element of a comma-separated header value: the
// one the proxy nearest the client added.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// safeMethod reports whether a request with this method is never checked:
// the methods that do not change state (RFC 9110 9.2.1), and CONNECT,
// which opens a tunnel (a WebSocket over HTTP/2) as a GET with Upgrade
// does over HTTP/1.1.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodConnect:
		return true
	}
	return false
}

// csrfVerdict is why a request is refused; "" lets it pass.
type csrfVerdict string

// Reasons for a refusal, as log fields.
const (
	csrfPass           csrfVerdict = ""
	csrfCrossSite      csrfVerdict = "Sec-Fetch-Site says the request comes from another site"
	csrfSameSite       csrfVerdict = "Sec-Fetch-Site says the request comes from another origin of the site; allow_same_site or trusted_origins would accept it"
	csrfOtherOrigin    csrfVerdict = "Origin is neither the request's own origin nor a trusted one"
	csrfNullOrigin     csrfVerdict = "Origin is null (a sandboxed page, a data: URL or a cross-origin redirect)"
	csrfOtherReferer   csrfVerdict = "Referer is of neither the request's own origin nor a trusted one"
	csrfNoHeaders      csrfVerdict = "none of Sec-Fetch-Site, Origin and Referer, which strict requires"
	csrfTokenMissing   csrfVerdict = "the session's CSRF token is in neither the token header nor the form field"
	csrfTokenWrong     csrfVerdict = "the CSRF token is not the session's (a page rendered before a login, or forged)"
	csrfTokenTwice     csrfVerdict = "the token header is given more than once"
	csrfTokenBeyondMax csrfVerdict = "the form field of the CSRF token is not within max_body bytes of the body"
)

// csrfReasons name the refusals in metrics.
var csrfReasons = map[csrfVerdict]string{
	csrfCrossSite:      "cross_site",
	csrfSameSite:       "same_site",
	csrfOtherOrigin:    "other_origin",
	csrfNullOrigin:     "null_origin",
	csrfOtherReferer:   "other_referer",
	csrfNoHeaders:      "no_headers",
	csrfTokenMissing:   "token_missing",
	csrfTokenWrong:     "token_wrong",
	csrfTokenTwice:     "token_twice",
	csrfTokenBeyondMax: "token_beyond_max_body",
}

// judgeOrigin decides whether an unsafe request may come from where its
// headers say, self being the request's own origin (normalOrigin).
// Fetch Metadata first; where it is absent, Origin; where that is absent
// too, Referer; with none of them, the request passes unless strict.
func (g *csrfGuard) judgeOrigin(fetchSite, origin, referer, self string) csrfVerdict {
	switch fetchSite {
	case "":
	case "same-origin", "none":
		return csrfPass
	case "same-site":
		if g.sameSite || g.trustedOrigin(origin) {
			return csrfPass
		}
		return csrfSameSite
	default: // cross-site, or a value no browser sends
		if g.trustedOrigin(origin) {
			return csrfPass
		}
		return csrfCrossSite
	}
	switch {
	case origin == "null":
		return csrfNullOrigin
	case origin != "":
		if o, ok := originOf(origin); ok && (o == self || g.trusted[o]) {
			return csrfPass
		}
		return csrfOtherOrigin
	case referer != "":
		if o, ok := originOf(referer); ok && (o == self || g.trusted[o]) {
			return csrfPass
		}
		return csrfOtherReferer
	case g.strict:
		return csrfNoHeaders
	}
	return csrfPass
}

// trustedOrigin reports whether the Origin header names a trusted origin.
func (g *csrfGuard) trustedOrigin(origin string) bool {
	if len(g.trusted) == 0 || origin == "" {
		return false
	}
	o, ok := originOf(origin)
	return ok && g.trusted[o]
}

// originOf is the normalized origin of an Origin or Referer value.
func originOf(v string) (string, bool) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return normalOrigin(u.Scheme, u.Host), true
}

// guardCSRF refuses an unsafe request that is not exempt and comes from
// another site, or that lacks its session's token; it gives the app the
// token of a session. Call it after Scrub and before anything changes
// the session. A refusal is a 403, with a log line that names the
// request and the session by its short hash.
func (s *requestState) guardCSRF(r *http.Request) error {
	g := s.handler.csrf
	var want string // the session's token, if the token is checked
	if g.token != nil {
		if s.fromID != nil && s.fromID.csrfToken != "" {
			want = s.fromID.csrfToken
			r.Header[g.tokenAs] = []string{want}
		}
		// Empty without a session, so that a template renders no
		// placeholder's name into a form.
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		repl.Set(placeholderCSRFToken, want)
	}
	if safeMethod(r.Method) {
		return nil
	}
	if g.exempt != nil {
		exempt, err := g.exempt.AnyMatchWithError(r)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("matching the request against csrf exempt: %w", err))
		}
		if exempt {
			return nil
		}
	}
	self := requestOrigin(r)
	verdict := g.judgeOrigin(r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin"), r.Header.Get("Referer"), self)
	switch {
	case verdict != csrfPass || g.token == nil || s.record == nil:
	case want == "":
		// A session loaded without its token (never, as requestState
		// loads it anew for a handler that checks it): fail closed.
		verdict = csrfTokenWrong
	case s.tokenShown:
		// An earlier check of this request's session found its token
		// (this handler reached again through a handle_response or an
		// invoke, or one around it): the body of the form that held
		// it went to the app that answered in between, and reading it
		// again would refuse the request that proved itself.
	default:
		var err error
		if verdict, err = g.token.check(r, want); err != nil {
			return err
		}
		s.tokenShown = verdict == csrfPass
	}
	if verdict == csrfPass {
		return nil
	}
	s.logRefusedCSRF(verdict, self)
	return caddyhttp.Error(http.StatusForbidden, errors.New(string(verdict)))
}

// logRefusedCSRF logs a refused request: what it said of where it came
// from (of the Referer only its origin, which holds no path or query),
// and its session's short hash; never a token.
func (s *requestState) logRefusedCSRF(verdict csrfVerdict, self string) {
	r := s.request
	fields := []zap.Field{
		zap.String("reason", string(verdict)),
		zap.String("method", r.Method),
		zap.String("uri", r.RequestURI),
		zap.String("request_origin", self),
	}
	if v := r.Header.Get("Sec-Fetch-Site"); v != "" {
		fields = append(fields, zap.String("sec_fetch_site", v))
	}
	if v := r.Header.Get("Origin"); v != "" {
		fields = append(fields, zap.String("origin", v))
	}
	if v := r.Header.Get("Referer"); v != "" {
		o, _ := originOf(v)
		fields = append(fields, zap.String("referer_origin", o))
	}
	if s.record != nil {
		fields = append(fields, zap.String("session", s.hash.Short()))
	}
	reason, ok := csrfReasons[verdict]
	if !ok {
		reason = "other"
	}
	sessionMetrics.csrfRefused.WithLabelValues(reason).Inc()
	s.handler.logger.Warn("refused a request as cross-site request forgery", fields...)
}
