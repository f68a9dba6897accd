package caddysession

import (
	"encoding/json"
	"reflect"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-session/caddy-session/session"
)

func init() {
	httpcaddyfile.RegisterDirective("session", parseSessionDirective)
	// Before redir, so that every handler that answers for the app
	// (respond, reverse_proxy, php_fastcgi, file_server, templates...) and
	// every one that may use the session's placeholders (request_header,
	// rewrite, basic_auth, forward_auth...) runs inside the session.
	httpcaddyfile.RegisterDirectiveOrder("session", httpcaddyfile.Before, "redir")
}

// parseSessionDirective is what RegisterHandlerDirective would do for the
// session handler, and adds, for a session at a site's top level, the guard
// of the site's error routes (errorroute.go). Nested in a route or handle
// block, a directive's error routes would be dropped: there the site block's
// state is a copy of the adaptation's.
func parseSessionDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	handler := &Handler{matcherToken: h.MatcherToken}
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if matcherSet != nil {
		// The handler's own matcher, not its route's: a request it does
		// not match still has the namespace removed (unmatched.go).
		handler.MatchRaw = caddyhttp.RawMatcherSets{matcherSet}
	}
	values := h.NewRoute(nil, handler)
	if reflect.ValueOf(h.State).UnsafePointer() == reflect.ValueOf(h.BlockState).UnsafePointer() {
		values = append(values, errorGuardRoute(h, handler.HeaderPrefix))
	}
	return values, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	session [<matcher>] {
//		store bolt [<path>] {
//			lock_timeout <duration>
//			no_sync
//		}
//		store redis [<url>] {
//			...                        # see RedisStore.UnmarshalCaddyfile
//		}
//		cookie [<name>] {
//			domain <domain>
//			path <path>
//			secure auto|always|never
//			same_site lax|strict|none
//			partitioned
//			priority low|medium|high
//		}
//		idle_timeout <duration>
//		absolute_timeout <duration>
//		touch_interval <duration>
//		no_touch <matcher...>
//		remember {
//			idle_timeout <duration>
//			absolute_timeout <duration>
//		}
//		flash_on <matcher...>
//		header_prefix <prefix>
//		renew_on <key...>
//		identity_key <key>
//		writable <key...>
//		realm <name>
//		forward_cookie
//		shared_cache private|allow
//		limits {
//			keys <n>
//			value_size <size>
//			session_size <size>
//		}
//		max_sessions_per_identity <n>
//		record_user_agent
//		devices <matcher...>
//		bind [user_agent] [ip [<ipv4 prefix length> [<ipv6 prefix length>]]]
//		on_store_error 503|anonymous|stale <duration>
//		fallback_store <backend> [<args...>] [{ ... }]
//		sign {
//			keys <key...>
//			lifetime <duration>
//			rotate <duration>
//			secret <secret>
//			key_file <pem file...>
//		}
//		csrf {
//			...                        # see Handler.unmarshalCSRF
//		}
//		seal_values {
//			index_key <secret>
//		}
//		tunnels <check interval>|keep
//	}
//
// Each subdirective may be given once, at every level. The matchers of
// no_touch, flash_on, devices and csrf's exempt are named matchers of the
// site (@name) or paths (/poll*); each is one matcher set. flash_on also
// takes *, every request.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, "session", h, handlerSubdirectives)
}

// eachSubdirective parses each subdirective of the block that follows
// with its parser from parsers, refusing unknown ones and any given twice:
// the second would silently replace the first.
func eachSubdirective[T any](d *caddyfile.Dispenser, what string, into T, parsers map[string]func(T, *caddyfile.Dispenser) error) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		parse, ok := parsers[name]
		if !ok {
			return d.Errf("unknown %s subdirective %q", what, name)
		}
		if seen[name] {
			return d.Errf("%s subdirective %q is given twice; give it once", what, name)
		}
		seen[name] = true
		if err := parse(into, d); err != nil {
			return err
		}
	}
	return nil
}

// handlerSubdirectives parse each subdirective of the session directive,
// with the dispenser on its name.
var handlerSubdirectives = map[string]func(h *Handler, d *caddyfile.Dispenser) error{
	"store":            (*Handler).unmarshalStore,
	"cookie":           (*Handler).unmarshalCookie,
	"idle_timeout":     func(h *Handler, d *caddyfile.Dispenser) error { return parseDuration(d, &h.IdleTimeout) },
	"absolute_timeout": func(h *Handler, d *caddyfile.Dispenser) error { return parseDuration(d, &h.AbsoluteTimeout) },
	"touch_interval":   func(h *Handler, d *caddyfile.Dispenser) error { return parseDuration(d, &h.TouchInterval) },
	"no_touch":         (*Handler).unmarshalNoTouch,
	"remember":         (*Handler).unmarshalRemember,
	"flash_on":         (*Handler).unmarshalFlashOn,
	"header_prefix":    (*Handler).unmarshalHeaderPrefix,
	"renew_on":         func(h *Handler, d *caddyfile.Dispenser) (err error) { h.RenewOn, err = parseKeys(d); return err },
	"writable":         func(h *Handler, d *caddyfile.Dispenser) (err error) { h.Writable, err = parseKeys(d); return err },
	"identity_key":     func(h *Handler, d *caddyfile.Dispenser) error { return parseOneKey(d, &h.IdentityKey) },
	"realm":            func(h *Handler, d *caddyfile.Dispenser) error { return parseOneArg(d, &h.Realm) },
	"forward_cookie": func(h *Handler, d *caddyfile.Dispenser) error {
		h.ForwardCookie = true
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	},
	"shared_cache":              (*Handler).unmarshalSharedCache,
	"limits":                    (*Handler).unmarshalLimits,
	"max_sessions_per_identity": (*Handler).unmarshalMaxSessions,
	"record_user_agent":         (*Handler).unmarshalRecordUserAgent,
	"devices":                   (*Handler).unmarshalDevices,
	"bind":                      (*Handler).unmarshalBind,
	"on_store_error":            (*Handler).unmarshalOnStoreError,
	"fallback_store":            (*Handler).unmarshalFallbackStore,
	"sign":                      (*Handler).unmarshalSign,
	"csrf":                      (*Handler).unmarshalCSRF,
	"seal_values":               (*Handler).unmarshalSealValues,
	"tunnels":                   (*Handler).unmarshalTunnels,
}

// unmarshalSharedCache reads `shared_cache private|allow`, refusing any
// other value where it is written rather than when the config loads.
func (h *Handler) unmarshalSharedCache(d *caddyfile.Dispenser) error {
	if err := parseOneArg(d, &h.SharedCache); err != nil {
		return err
	}
	if err := h.provisionSharedCache(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

func (h *Handler) unmarshalStore(d *caddyfile.Dispenser) (err error) {
	h.StoreRaw, err = unmarshalStoreModule(d)
	return err
}

// unmarshalStoreModule reads `<backend> [<args...>] [{ ... }]`, a store
// module, as store and fallback_store name one.
func unmarshalStoreModule(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	backend := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.session.stores."+backend)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, "backend", backend, nil), nil
}

// unmarshalNoTouch reads the matchers of no_touch, resolved as the site's
// directives resolve theirs.
func (h *Handler) unmarshalNoTouch(d *caddyfile.Dispenser) error {
	sets, err := h.unmarshalMatchers(d, "no_touch", "/poll*", nil,
		"* would keep every request from extending a session; name the requests that only read it (@name, or a path)")
	h.NoTouchRaw = append(h.NoTouchRaw, sets...)
	return err
}

// unmarshalMatchers reads the arguments of a subdirective that takes
// matchers of the site: named matchers (@name) and paths, resolved as the
// site's directives resolve theirs, each one matcher set. example is a
// path to suggest. * stands for star when it is not nil (an empty set
// matches every request); otherwise it is refused, saying noStar.
func (h *Handler) unmarshalMatchers(d *caddyfile.Dispenser, name, example string, star caddy.ModuleMap, noStar string) (caddyhttp.RawMatcherSets, error) {
	n := d.CountRemainingArgs()
	if n == 0 {
		return nil, d.ArgErr()
	}
	if h.matcherToken == nil {
		return nil, d.Errf("%s names matchers of the site, which only a session directive in a site can resolve", name)
	}
	sets := make(caddyhttp.RawMatcherSets, 0, n)
	for range n {
		set, ok, err := h.matcherToken()
		switch {
		case err != nil:
			return nil, d.Errf("%s: %v", name, err)
		case !ok && star != nil:
			return nil, d.Errf("%s: %q is not a matcher; name one defined in the site (@name), give a path (%s), or * for every request", name, d.Val(), example)
		case !ok:
			return nil, d.Errf("%s: %q is not a matcher; name one defined in the site (@name), or give a path (%s)", name, d.Val(), example)
		case set == nil && star == nil:
			return nil, d.Errf("%s: %s", name, noStar)
		case set == nil:
			set = star
		}
		sets = append(sets, set)
	}
	return sets, nil
}

func (h *Handler) unmarshalHeaderPrefix(d *caddyfile.Dispenser) error {
	if err := parseOneArg(d, &h.HeaderPrefix); err != nil {
		return err
	}
	if !session.ValidPrefix(h.HeaderPrefix) {
		return d.Errf("header_prefix %q must be a header name ending in '-'", h.HeaderPrefix)
	}
	return nil
}

// parseOneArg reads the single argument of a subdirective.
func parseOneArg(d *caddyfile.Dispenser, into *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*into = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func parseOneKey(d *caddyfile.Dispenser, into *string) error {
	keys, err := parseKeys(d)
	if err != nil {
		return err
	}
	if len(keys) != 1 {
		return d.ArgErr()
	}
	*into = keys[0]
	return nil
}

func (h *Handler) unmarshalCookie(d *caddyfile.Dispenser) error {
	if h.Cookie == nil {
		h.Cookie = new(CookieConfig)
	}
	c := h.Cookie
	if d.NextArg() {
		c.Name = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if err := eachSubdirective(d, "cookie", c, cookieSubdirectives); err != nil {
		return err
	}
	if _, err := c.build(); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// cookieSubdirectives parse each subdirective of the cookie block, with the
// dispenser on its name.
var cookieSubdirectives = map[string]func(c *CookieConfig, d *caddyfile.Dispenser) error{
	"domain":    func(c *CookieConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Domain) },
	"path":      func(c *CookieConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Path) },
	"secure":    func(c *CookieConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Secure) },
	"same_site": func(c *CookieConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.SameSite) },
	"priority":  func(c *CookieConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Priority) },
	"partitioned": func(c *CookieConfig, d *caddyfile.Dispenser) error {
		c.Partitioned = true
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	},
}

func (h *Handler) unmarshalLimits(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.Limits == nil {
		h.Limits = new(LimitsConfig)
	}
	return eachSetting(d, func(sub, val string) error {
		switch sub {
		case "keys":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return d.Errf("limits keys: %q is not a positive whole number", val)
			}
			h.Limits.Keys = n
		case "value_size", "session_size":
			size, err := humanize.ParseBytes(val)
			if err != nil || size < 1 || size > 1<<30 {
				return d.Errf("limits %s: %q is not a size such as 4KiB", sub, val)
			}
			if sub == "value_size" {
				h.Limits.ValueSize = int(size)
			} else {
				h.Limits.SessionSize = int(size)
			}
		default:
			return d.Errf("unknown limits subdirective %q", sub)
		}
		return nil
	})
}

// eachSetting calls set for each `<name> <value>` line of the block that
// follows, refusing lines with no value or more than one.
func eachSetting(d *caddyfile.Dispenser, set func(name, value string) error) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		value := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		if err := set(name, value); err != nil {
			return err
		}
	}
	return nil
}

func parseDuration(d *caddyfile.Dispenser, into *caddy.Duration) error {
	name := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil || dur <= 0 {
		return d.Errf("%s: %q is not a positive duration such as 30m", name, d.Val())
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	*into = caddy.Duration(dur)
	return nil
}

func parseKeys(d *caddyfile.Dispenser) ([]string, error) {
	name := d.Val()
	keys := d.RemainingArgs()
	if len(keys) == 0 {
		return nil, d.ArgErr()
	}
	for _, k := range keys {
		if !session.ValidKey(k) {
			return nil, d.Errf("%s: %v", name, session.CheckKey(k))
		}
	}
	return keys, nil
}

// UnmarshalCaddyfile sets up the bolt store from Caddyfile tokens, the
// part after `store`. Syntax:
//
//	bolt [<path>] {
//		lock_timeout <duration>
//		no_sync
//	}
func (b *BoltStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "bolt"
	if d.NextArg() {
		b.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, "bolt store", b, boltSubdirectives)
}

// boltSubdirectives parse each subdirective of the bolt store, with the
// dispenser on its name.
var boltSubdirectives = map[string]func(b *BoltStore, d *caddyfile.Dispenser) error{
	"lock_timeout": func(b *BoltStore, d *caddyfile.Dispenser) error { return parseDuration(d, &b.LockTimeout) },
	"no_sync": func(b *BoltStore, d *caddyfile.Dispenser) error {
		b.NoSync = true
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	},
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*BoltStore)(nil)
)
