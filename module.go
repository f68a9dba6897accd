// Package caddysession is a Caddy module that gives the applications behind
// it server-side sessions. The browser holds only an opaque, random session
// ID in a cookie; the state lives in a store (bbolt by default, or Redis),
// reaches the upstream as trusted request headers, and is changed by the
// upstream's response headers, which are removed before the client sees
// them.
package caddysession

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler gives the requests it handles a server-side session.
//
// Before the request goes on, every header in the namespace (header_prefix,
// default `X-Session-`, matched case-insensitively with `_` read as `-`) is
// removed from it, the session cookie is removed from the Cookie header, and
// each key of the session is added as one header (`user` becomes
// `X-Session-User`). The response's namespace headers are commands:
// `X-Session-Set-<Key>`, `X-Session-Delete`, `X-Session-Renew`,
// `X-Session-Destroy`, `X-Session-Destroy-All`, `X-Session-Touch` and
// `X-Session-Remember` and `X-Session-Flash-<Key>`. They are applied in
// one store transaction, all or nothing, and removed before the response
// reaches the client. A remembered session (`X-Session-Remember: true`)
// is forwarded with `X-Session-Meta-Remembered: true`. A flash value
// reaches the app once, as the request header `X-Session-Flash-<Key>`, on
// the next request of the session that matches flash_on.
//
// Sessions that start, get a new ID or end are told to Caddy's events app
// as `session.created`, `session.renewed` and `session.destroyed`, whose
// subscribers run in the request; an event carries the short hash of the
// session and the value of its identity key, never its ID or other values.
type Handler struct {
	// The session store, a module in the namespace
	// `http.handlers.session.stores`, chosen by its `backend` field.
	// Default: `bolt`, a bbolt database under Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.session.stores inline_key=backend"`

	// The store the sessions are moving away from, during a migration to
	// store: a session that store does not hold is read from this one and
	// copied into store on first use; writes go to store only, and a
	// session that ends is removed from both. Remove it once
	// `caddy session migrate` has copied the rest. Default: none.
	FallbackStoreRaw json.RawMessage `json:"fallback_store,omitempty" caddy:"namespace=http.handlers.session.stores inline_key=backend"`

	// The session cookie. Default: `sid`, `Path=/`, `HttpOnly`,
	// `SameSite=Lax`, `Secure` when the request came over TLS, and no
	// expiry (a browser-session cookie).
	Cookie *CookieConfig `json:"cookie,omitempty"`

	// How long a session may go unused before it ends. Default: 30m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// How long a session may last after its creation, however much it is
	// used. Must not be shorter than idle_timeout. Default: 12h.
	AbsoluteTimeout caddy.Duration `json:"absolute_timeout,omitempty"`

	// How often the idle deadline of a session in use is pushed back, at
	// the cost of one store write. A session may therefore end up to this
	// much earlier than idle_timeout after its last request. Must be
	// shorter than idle_timeout. Default: 1m.
	TouchInterval caddy.Duration `json:"touch_interval,omitempty"`

	// Requests that read the session without extending it, such as a page
	// polling in the background: matcher sets, as in a route's `match` (a
	// request matches if one set does). A matching request never moves
	// the session's idle deadline or last-seen time, even when its response
	// sets keys or renews the ID, so a session that is only polled ends
	// idle_timeout after its last other request. The matchers see the
	// request's method and URI as this handler got them, before a rewrite
	// inside it (try_files, php_fastcgi), and run only when a request would
	// touch the session. Default: none; every request extends the session.
	NoTouchRaw caddyhttp.RawMatcherSets `json:"no_touch,omitempty" caddy:"namespace=http.matchers"`

	// The timeouts of remembered sessions, which the app makes persistent
	// with `X-Session-Remember: true` ("remember me"): they get a new ID, a
	// cookie with a Max-Age up to their absolute deadline, and these
	// timeouts in place of idle_timeout and absolute_timeout. Default: 14
	// days idle and 30 days absolute (or the normal timeouts, if longer).
	Remember *RememberConfig `json:"remember,omitempty"`

	// Requests that receive the session's flash values (set by a response
	// with `X-Session-Flash-<Key>`) as the request headers
	// `X-Session-Flash-<Key>`: matcher sets, as in a route's `match` (a
	// request matches if one set does; an empty set matches every
	// request). The first matching request of the session takes them, and
	// no other request gets them, unless its response is a 500 or more,
	// which puts them back. The matchers run before the request goes on,
	// and only for a session that holds flash values. Default: top-level
	// navigations, requests with `Sec-Fetch-Mode: navigate` (and
	// `Sec-Fetch-Dest: document`, if sent: not a frame's), or, from a
	// client that sends no Sec-Fetch-Mode, with `text/html` in `Accept`.
	FlashOnRaw caddyhttp.RawMatcherSets `json:"flash_on,omitempty" caddy:"namespace=http.matchers"`

	// The namespace of the header protocol: a header name prefix ending in
	// `-`. Default: `X-Session-`.
	HeaderPrefix string `json:"header_prefix,omitempty"`

	// The requests that get sessions: matcher sets, as in a route's
	// `match` (a request matches if one set does); the Caddyfile's
	// `session <matcher>` puts its matcher here. A request that matches
	// none gets no session, but its namespace headers and session cookie
	// are removed all the same, and so is the namespace of its response:
	// a matcher on the handler's route would let a client's
	// `X-Session-User` through to the app on every other path. Default:
	// every request.
	MatchRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// Keys whose change gives the session a new ID, so that a login page
	// gets protection from session fixation without knowing it.
	// Default: `["user"]`.
	RenewOn []string `json:"renew_on,omitempty"`

	// The key whose value identifies the user: X-Session-Destroy-All and
	// the admin API's revoke by user end every session with the same value
	// of it, and a request in flight across a rotation keeps its changes
	// only if the session still has the value it saw. It must be one of
	// renew_on, so that a change of user always gives a new ID.
	// Default: the first key of renew_on.
	IdentityKey string `json:"identity_key,omitempty"`

	// The realm the sessions belong to. A handler only adopts sessions of
	// its own realm, and every revocation acts within one realm, so two
	// sites never share sessions by accident, even in one store. Handlers
	// that should share sessions (subdomains with a cookie domain, say)
	// name the same realm. Default: the handler's site, its hosts and
	// listen addresses, such as `example.com@:443`.
	Realm string `json:"realm,omitempty"`

	// The keys the upstream may set or delete. Default: all keys.
	Writable []string `json:"writable,omitempty"`

	// Pass the session cookie on to the upstream in the Cookie header.
	// Default: false; the upstream never sees the session ID.
	ForwardCookie bool `json:"forward_cookie,omitempty"`

	// Whether shared caches (a CDN, a caching proxy, a caching handler
	// before this one) may store the responses to requests that carried a
	// live session, or its flash values, to the upstream. `private` (the
	// default): such a response gets `Cache-Control: private` unless it
	// already holds a bare private or no-store (public, s-maxage and a
	// private="<field>", which lets shared caches keep the rest, go; max-age
	// stays for the user's own browser), `Vary: Cookie`, and loses
	// CDN-Cache-Control, Surrogate-Control, <Vendor>-CDN-Cache-Control and
	// X-Accel-Expires: an app written for pages that were the same for
	// everyone would otherwise have one user's page served to the next.
	// `allow` leaves
	// the app's caching headers as they are, for a CDN keyed on the
	// session cookie. Responses that set or expire the cookie are
	// no-store either way. Default: `private`.
	SharedCache string `json:"shared_cache,omitempty"`

	// Bounds on what one session may hold.
	Limits *LimitsConfig `json:"limits,omitempty"`

	// The most live sessions one user (one value of identity_key) may have
	// in the realm. A login beyond it, a session created with the identity
	// key or a change of its value, ends the user's least recently seen
	// other sessions (by their last-seen time, which is precise to
	// touch_interval) until this many remain, the new one among them.
	// Concurrent logins may exceed it briefly; the next login evicts the
	// excess. Default: 0, no cap.
	MaxSessionsPerIdentity int `json:"max_sessions_per_identity,omitempty"`

	// Keep the User-Agent of the request that creates a session, at most
	// 256 bytes of it, for the list of devices (devices). It is stored
	// beside the session's keys, counted in no limit, and never forwarded
	// as a key. Default: false.
	RecordUserAgent bool `json:"record_user_agent,omitempty"`

	// Requests on which the app also receives the user's sessions in this
	// realm, as the request header `X-Session-Meta-Devices` (with
	// header_prefix): a JSON array of at most 20 sessions, this one first,
	// then the others from the most recently seen, each with its short
	// hash, its creation and last-seen times, whether it is the current
	// one, and its User-Agent (record_user_agent). The app ends one of them
	// with the response command `X-Session-Revoke: <short hash>`. Matcher
	// sets, as in a route's `match` (a request matches if one set does);
	// only requests of a session with an identity read the list. Default:
	// none.
	DevicesRaw caddyhttp.RawMatcherSets `json:"devices,omitempty" caddy:"namespace=http.matchers"`

	// Bind each session to the client that created it, by User-Agent,
	// network, or both: a request presenting the cookie from another
	// client is served as anonymous and logged, and the session stays as
	// it was. Default: none (see BindConfig for why).
	Bind *BindConfig `json:"bind,omitempty"`

	// What requests get while the store fails: `503`, `anonymous`, or a
	// copy of sessions read lately (`stale`). See StoreErrorConfig.
	// Default: `503`.
	OnStoreError *StoreErrorConfig `json:"on_store_error,omitempty"`
	// Forward a signed token with every request of a session, as the
	// request header `X-Session-Meta-Token` (with header_prefix): a
	// compact JWS (EdDSA by default) holding the session's short hash
	// (`sid`), the values of some of its keys (`session`, and `sub` for
	// the identity key), the request's host (`aud`), method and path, and
	// `iat` and `exp`, with the signing key's `kid` in its header. The
	// public keys are served as a JWKS by the session_jwks handler and the
	// admin API. Default: none.
	Sign *SignConfig `json:"sign,omitempty"`
	// Seal the values of sessions at rest: every value, flash value and
	// recorded User-Agent is stored encrypted under a key derived from the
	// session's ID, which only the client (and an upstream given the
	// cookie) holds, and users are indexed by a keyed hash of their name.
	// Sessions stored before are sealed at their next write. Default: off.
	SealValues *SealConfig `json:"seal_values,omitempty"`

	// What happens to a tunnel (a WebSocket, or another protocol that a
	// 101 upgrade or a 2xx to CONNECT switches to) when the session its
	// handshake carried ends: it is closed, both ways, at once for an end
	// this Caddy commits, and within the check interval for one committed
	// elsewhere (another instance, expiry), and it keeps the session alive
	// while it is open. See TunnelsConfig. Default: closed, checked every
	// minute (or touch_interval, if shorter).
	Tunnels *TunnelsConfig `json:"tunnels,omitempty"`

	// Protection from cross-site request forgery (csrf.go): unsafe
	// requests must come from the site's own pages, and with a token
	// configured, those of a session must echo its token. Default: off.
	CSRF *CSRFConfig `json:"csrf,omitempty"`

	// tunnelCheck is how often an open tunnel's session is read again;
	// 0 keeps tunnels open whatever becomes of their session.
	tunnelCheck time.Duration
	// cleanedUp is set once the handler's config has gone: a tunnel of it
	// still open whose session cannot be read is closed.
	cleanedUp *atomic.Bool // by pointer: a Handler is copied as a value

	store     store.Store
	storeName string // e.g. "bolt:/var/lib/caddy/session/sessions.db", for the admin API
	// liveCounter counts the store for live_sessions, from
	// holdLiveCounter to releaseLiveCounter.
	liveCounter *liveCounter
	// base is the store itself, before fallback_store, on_store_error
	// stale and seal_values wrap it into store: what the admin API wraps
	// anew with the wrappers of every handler on it (admin_store.go).
	base store.Store
	// fallback is the store behind fallback_store, and fallbackName its
	// name; nil and "" without one.
	fallback     *store.Fallback
	fallbackName string
	backend      string     // e.g. "bolt", for metrics
	ownStore     *BoltStore // the default store, which the handler cleans up
	protocol     *session.Protocol
	cookie       *session.Cookie
	timeouts     session.Timeouts
	limits       session.Limits
	identity     string
	rules        rules
	realm        string // Realm, or the site's, once the app has wired the config
	app          *App
	// inErrors is what h does in an error route (serveErrorRoute): what
	// its server's guard does, for the same handlers.
	inErrors  *ErrorGuard
	touches   *touchFilter
	match     caddyhttp.MatcherSets // nil: every request gets its session
	noTouch   caddyhttp.MatcherSets // nil: every request touches
	flashOn   caddyhttp.MatcherSets // nil: top-level navigations
	devices   caddyhttp.MatcherSets // nil: no request gets the list of devices
	devicesAs string                // the request header of the list
	signer    *tokenSigner          // nil: no token
	csrf      *csrfGuard            // nil: no CSRF protection
	logger    *zap.Logger
	// storeErrors is OnStoreError's policy; stale its copy of sessions,
	// nil unless the policy is stale.
	storeErrors storeErrorPolicy
	stale       *staleCopy
	events      *caddyevents.App // nil: no events (a handler outside a config)
	ctx         caddy.Context    // the handler's own, with which events are emitted

	sealIndex *session.IndexKey // the index key of seal_values; nil: off
	// lookupIndex is the index key under which lookups by user (logout
	// everywhere, revocations, the cap, devices) also look for sealed
	// sessions: sealIndex, or with seal_values off, bolt's generated one
	// if Caddy's storage still holds it (sessions sealed while it was on
	// stay indexed under it until their next write); nil: none.
	lookupIndex *session.IndexKey
	// sharedCacheAllowed: shared_cache allow; responses of sessions keep
	// the app's caching headers.
	sharedCacheAllowed bool
	// derives is what this handler derives from a session's ID when it
	// loads it, for itself or for the handlers that share its load
	// (sharesLoad), which cannot load it again once it has taken the
	// cookie off the request; set when the app wires the config.
	derives derivations
	// loadVar is the request var that keeps the session this handler, or
	// a handler that shares its load, has loaded for the request (one
	// per store, cookie, realm and fallback, see loadVarOf); set when
	// the app wires the config.
	loadVar string
	// others are the namespaces of the other session handlers of the
	// handler's server that are not its own (namespaces.go); set when
	// the app wires the config.
	others []*session.Protocol
	// forwardedVar is the request var with which a handler of this
	// namespace says it forwarded its session (unmatched.go);
	// marksForwarded: it must, since a handler of its server has its own
	// matchers (set when the app wires the config).
	forwardedVar   string
	marksForwarded bool
	// foreignCookies are the session cookies of the config's other
	// handlers that browsers may send on this one's requests, which it
	// takes off them; readsStash: a handler takes this one's off
	// (foreigncookies.go; both set when the app wires the config).
	foreignCookies []*session.Cookie
	readsStash     bool
	// tossable are the session cookies of the config's other handlers
	// that browsers do not send on this one's requests, with the hosts
	// they are sent to: an app's Set-Cookie of one whose Domain covers
	// those hosts plants it there all the same (appcookies.go; set when
	// the app wires the config).
	tossable []tossTarget
	// foreignErrors: another site's error routes may answer this
	// handler's errors (wiring.go), so the session it forwarded is taken
	// off the request when it returns one (leaveToErrorRoutes).
	foreignErrors bool
	// sharedLoad: another handler of the config may adopt this one's
	// load, or this one its (sharesLoad), so that two of them can handle
	// one response of one session, the inner first (tellOuter); set when
	// the app wires the config.
	sharedLoad bool

	// matcherToken resolves the next Caddyfile argument as a matcher of
	// the site, while the session directive is parsed: the directive's
	// httpcaddyfile.Helper.MatcherToken.
	matcherToken func() (caddy.ModuleMap, bool, error)
}

// CookieConfig configures the session cookie.
type CookieConfig struct {
	// The cookie's name. A `__Host-` name needs `secure always`, path `/`
	// and no domain. Default: `sid`.
	Name string `json:"name,omitempty"`
	// The cookie's Domain attribute. Default: none (host-only).
	Domain string `json:"domain,omitempty"`
	// The cookie's Path attribute. Default: `/`.
	Path string `json:"path,omitempty"`
	// When to set the Secure attribute: `auto` (when the request came over
	// TLS), `always` or `never`. Behind a TLS-terminating proxy use
	// `always`. Default: `auto`.
	Secure string `json:"secure,omitempty"`
	// The SameSite attribute: `lax`, `strict` or `none` (`none` needs
	// `secure always`). Default: `lax`.
	SameSite string `json:"same_site,omitempty"`
	// Set the Partitioned attribute (CHIPS), for a site embedded in other
	// sites' pages: the browser keeps a separate cookie for each top-level
	// site. Needs `secure always`, and in practice `same_site none`.
	// Default: false.
	Partitioned bool `json:"partitioned,omitempty"`
	// The Priority attribute, which Chromium-based browsers use to choose
	// which of a site's cookies to evict first: `low`, `medium` or `high`.
	// Default: none (browsers treat it as medium).
	Priority string `json:"priority,omitempty"`
}

// LimitsConfig bounds what one session may hold. A response whose commands
// would break a limit changes nothing.
type LimitsConfig struct {
	// The most keys in one session. Default: 64.
	Keys int `json:"keys,omitempty"`
	// The most bytes in one value. Default: 4096.
	ValueSize int `json:"value_size,omitempty"`
	// The most bytes of all keys and values of one session. Default: 16384.
	SessionSize int `json:"session_size,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler and opens its store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.provisionSettings(); err != nil {
		return err
	}
	if err := h.provisionMatch(ctx); err != nil {
		return err
	}
	if err := h.provisionNoTouch(ctx); err != nil {
		return err
	}
	if err := h.provisionFlashOn(ctx); err != nil {
		return err
	}
	if err := h.provisionDevices(ctx); err != nil {
		return err
	}
	if err := h.provisionCSRF(ctx); err != nil {
		return err
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering session metrics: %v", err)
	}
	if err := h.provisionStore(ctx); err != nil {
		return err
	}
	if err := h.provisionFallback(ctx); err != nil {
		return err
	}
	if err := h.provisionStoreErrors(); err != nil {
		return err
	}
	if err := h.holdLiveCounter(); err != nil {
		return err
	}
	if err := h.provisionSign(ctx); err != nil {
		return err
	}
	if err := h.provisionSeal(ctx); err != nil {
		return err
	}
	app, err := sessionApp(ctx)
	if err != nil {
		return err
	}
	if h.events, err = eventsApp(ctx); err != nil {
		return err
	}
	h.ctx = ctx
	h.app = app
	h.inErrors = &ErrorGuard{protocol: h.protocol, logger: h.logger, app: app, handlers: []*Handler{h}}
	app.addHandler(h)
	return nil
}

// setRealm sets the realm: the configured one, or that of the handler's
// site, found by the app's walk of the config.
func (h *Handler) setRealm(sites map[*Handler]site) {
	switch at, placed := sites[h]; {
	case h.Realm != "":
		h.realm = h.Realm
	case placed:
		h.realm = at.realm()
	default:
		h.realm = "unplaced:" + h.cookie.Name
		h.logger.Warn("session handler outside the routes the realm is taken from; set its realm", zap.String("realm", h.realm))
	}
}

func (h *Handler) provisionSettings() error {
	if err := h.checkNegative(); err != nil {
		return err
	}
	h.timeouts = session.Timeouts{
		Idle:          durationOr(h.IdleTimeout, session.DefaultIdleTimeout),
		Absolute:      durationOr(h.AbsoluteTimeout, session.DefaultAbsoluteTimeout),
		TouchInterval: durationOr(h.TouchInterval, session.DefaultTouchInterval),
	}
	h.timeouts.RememberIdle, h.timeouts.RememberAbsolute = h.Remember.timeouts(h.timeouts)
	if err := h.Bind.provision(h); err != nil {
		return err
	}
	h.limits = session.DefaultLimits()
	if h.Limits != nil {
		h.limits.Keys = intOr(h.Limits.Keys, h.limits.Keys)
		h.limits.ValueSize = intOr(h.Limits.ValueSize, h.limits.ValueSize)
		h.limits.SessionSize = intOr(h.Limits.SessionSize, h.limits.SessionSize)
	}
	renewOn := h.RenewOn
	if len(renewOn) == 0 {
		renewOn = []string{"user"}
	}
	for _, k := range slices.Concat(renewOn, h.Writable) {
		if !session.ValidKey(k) {
			return session.CheckKey(k)
		}
	}
	h.RenewOn = lower(renewOn)
	h.identity = h.RenewOn[0]
	if h.IdentityKey != "" {
		h.identity = strings.ToLower(h.IdentityKey)
		if !slices.Contains(h.RenewOn, h.identity) {
			return fmt.Errorf("identity_key %q must be one of renew_on %q, so that a change of user gives a new ID", h.IdentityKey, h.RenewOn)
		}
	}
	prefix := h.HeaderPrefix
	if prefix == "" {
		prefix = session.DefaultHeaderPrefix
	}
	if !session.ValidPrefix(prefix) {
		return fmt.Errorf("header_prefix %q must be a header name ending in '-'", prefix)
	}
	h.rules = rules{timeouts: h.timeouts, limits: h.limits, renewOn: h.RenewOn, identity: h.identity}
	h.protocol = session.NewProtocol(prefix, lower(h.Writable), h.limits)
	if err := checkPrefixCovers(prefix, h.protocol); err != nil {
		return err
	}
	h.touches = new(touchFilter)
	c, err := h.Cookie.build()
	if err != nil {
		return err
	}
	h.cookie = c
	h.provisionTunnels()
	return h.provisionSharedCache()
}

// provisionSharedCache reads shared_cache.
func (h *Handler) provisionSharedCache() error {
	switch strings.ToLower(h.SharedCache) {
	case "", "private":
		h.sharedCacheAllowed = false
	case "allow":
		h.sharedCacheAllowed = true
	default:
		return fmt.Errorf("shared_cache must be private or allow, not %q", h.SharedCache)
	}
	return nil
}

func (h *Handler) provisionStore(ctx caddy.Context) error {
	var provider StoreProvider
	if h.StoreRaw == nil {
		h.ownStore = new(BoltStore)
		if err := h.ownStore.Provision(ctx); err != nil {
			return err
		}
		provider = h.ownStore
	} else {
		mod, err := ctx.LoadModule(h, "StoreRaw")
		if err != nil {
			return fmt.Errorf("loading session store: %v", err)
		}
		var ok bool
		if provider, ok = mod.(StoreProvider); !ok {
			// A module of another plugin in the namespace: an error
			// saying what it lacks, not a panic in the middle of a load.
			return fmt.Errorf("session store module %T is not a StoreProvider: it needs the methods SessionStore() and StoreName()", mod)
		}
	}
	h.backend = provider.(caddy.Module).CaddyModule().ID.Name()
	h.storeName = provider.StoreName()
	h.base = newInstrumented(relayStore{Store: provider.SessionStore(), relay: relayFor(h.storeName)}, h.backend)
	h.store = h.base
	return nil
}

// Validate checks the settings against each other.
func (h *Handler) Validate() error {
	t := h.timeouts
	if t.Absolute < t.Idle {
		return fmt.Errorf("absolute_timeout (%s) is shorter than idle_timeout (%s)", t.Absolute, t.Idle)
	}
	if t.TouchInterval >= t.Idle {
		return fmt.Errorf("touch_interval (%s) must be shorter than idle_timeout (%s)", t.TouchInterval, t.Idle)
	}
	if err := h.validateRemember(); err != nil {
		return err
	}
	if err := h.validateTunnels(); err != nil {
		return err
	}
	if l := h.limits; l.ValueSize > l.SessionSize {
		return fmt.Errorf("limits: value_size (%d) is larger than session_size (%d)", l.ValueSize, l.SessionSize)
	}
	return h.cookie.Validate()
}

// Cleanup releases the default store; a configured store module is cleaned
// up by Caddy.
func (h *Handler) Cleanup() error {
	if h.cleanedUp != nil {
		h.cleanedUp.Store(true)
	}
	h.releaseLiveCounter()
	if h.fallback != nil {
		if !moveMu.TryLock() {
			// A copy from the fallback_store is in flight: it ends first.
			if f := testhook.MoveEndWaits.Load(); f != nil {
				(*f)()
			}
			moveMu.Lock()
		}
		h.unwatch()
		moveMu.Unlock()
	}
	if h.stale != nil {
		releaseStaleCopy(h.storeName)
	}
	if h.ownStore != nil {
		return h.ownStore.Cleanup()
	}
	return nil
}

// ServeHTTP loads the request's session, forwards it to the next handler
// as headers, and applies the commands of the response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := h.app.wired(); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	if inErrorRoute(r) {
		return h.serveErrorRoute(w, r, next) // errorroute.go
	}
	if matched, err := h.gives(r); err != nil {
		return err
	} else if !matched {
		return h.serveUnmatched(w, r, next)
	}
	scrubRequest(r, h.protocol)
	h.scrubOthersFirst(r)
	h.markForwarded(r)
	state, err := h.requestState(r)
	if !h.ForwardCookie {
		h.cookie.Strip(r.Header)
	} else {
		h.restoreCookie(r) // foreigncookies.go
	}
	h.stripForeign(r)
	if err != nil {
		// The error routes get no session of this site: a CEL session()
		// there read the one a matcher had loaded through another site's
		// cookie before this handler ran.
		state = &requestState{handler: h, request: r}
	}
	caddyhttp.SetVar(r.Context(), stateVar, state) // what a CEL session() reads from now on
	if err != nil {
		// The cookie of forward_cookie is back on the request: another
		// site's error routes must not get it with the 503.
		h.leaveToErrorRoutes(state)
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	if h.csrf != nil {
		if err := state.guardCSRF(r); err != nil {
			// The check put the session's token on the request before
			// it refused it; the refusal reaches the error routes, this
			// site's own too, without the session.
			state.withdraw()
			return err
		}
	}
	if state.record != nil {
		if err := h.forwardSession(state, r); err != nil {
			h.leaveToErrorRoutes(state)
			return err
		}
	}
	state.setPlaceholders()

	rw := &responseWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, state: state, seenAtLoad: state.seenAtLoad}
	if h.others != nil {
		rw.preset = h.presetOthers(w.Header())
	}
	err = h.serve(rw, r, next)
	_ = rw.undefer() // a response whose commit waited for its body (responsewriter.go)
	if rw.commitErr == nil {
		rw.sendHeld() // a header with no body after it (responsewriter.go)
	}
	if err != nil {
		h.leaveToErrorRoutes(state)
	}
	if err != nil && !rw.wroteHeader {
		// Caddy writes the error response; no command may ride on it,
		// and its error routes get no session that ended meanwhile.
		rw.withdrawOnError(err)
		h.protocol.Scrub(w.Header())
		h.scrubOthers(w.Header(), rw.preset)
		state.settleFlashOnError(err)
		return err
	}
	if !rw.wroteHeader {
		// The handler wrote nothing: net/http will send 200 with no
		// body, unless what is around this handler answers.
		rw.settleUnwritten()
	}
	// Trailers are sent after this returns.
	h.protocol.Scrub(w.Header())
	h.scrubOthers(w.Header(), rw.preset)
	if rw.commitErr != nil {
		// The store failed to take the commands (or the session ended
		// meanwhile, which withdrew it already): the 503 goes to the
		// error routes as any error of the handlers does.
		h.leaveToErrorRoutes(state)
		return rw.commitError()
	}
	return err
}

// leaveToErrorRoutes takes the request's session off it (withdraw) when
// its error may reach the error routes of another site (foreignErrors):
// a catch-all site's handle_errors that proxies to its own app got this
// site's user and a token this site's app accepts, and its placeholders
// and a CEL session() read this site's session as their own.
func (h *Handler) leaveToErrorRoutes(s *requestState) {
	if h.foreignErrors {
		s.withdraw()
	}
}

// unforward takes off a request's header what this handler forwarded of
// its session to the app: its namespace, and the cookie of forward_cookie.
func (h *Handler) unforward(hdr http.Header) {
	h.protocol.Scrub(hdr)
	if h.ForwardCookie {
		h.cookie.Strip(hdr)
	}
}

// forwardSession hands the request's live session to the app: its values
// and what is derived from them, as request headers.
func (h *Handler) forwardSession(state *requestState, r *http.Request) error {
	h.protocol.Forward(r.Header, state.record.Values)
	h.forwardRemembered(r.Header, state.record)
	if h.signer != nil {
		state.forwardToken(r.Header)
	}
	if h.noTouch != nil {
		state.keepRequestLine()
	}
	if h.devices != nil {
		if err := state.forwardDevices(r.Header); err != nil {
			return err
		}
	}
	// Last before the app: nothing may fail between the take of the
	// flash values and the response, which puts them back if it fails.
	return state.handFlash(r)
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

func intOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func lower(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.ToLower(k)
	}
	return out
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
