package caddysession

import (
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
	httpcaddyfile.RegisterHandlerDirective("session", parseCaddyfile)
	// Before redir, so that every handler that answers for the app
	// (respond, reverse_proxy, php_fastcgi, file_server, templates...) and
	// every one that may use the session's placeholders (request_header,
	// rewrite, basic_auth, forward_auth...) runs inside the session.
	httpcaddyfile.RegisterDirectiveOrder("session", httpcaddyfile.Before, "redir")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
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
//		}
//		idle_timeout <duration>
//		absolute_timeout <duration>
//		touch_interval <duration>
//		header_prefix <prefix>
//		renew_on <key...>
//		writable <key...>
//		forward_cookie
//		limits {
//			keys <n>
//			value_size <size>
//			session_size <size>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "store":
			if !d.NextArg() {
				return d.ArgErr()
			}
			backend := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "http.handlers.session.stores."+backend)
			if err != nil {
				return err
			}
			h.StoreRaw = caddyconfig.JSONModuleObject(unm, "backend", backend, nil)
		case "cookie":
			if err := h.unmarshalCookie(d); err != nil {
				return err
			}
		case "idle_timeout":
			if err := parseDuration(d, &h.IdleTimeout); err != nil {
				return err
			}
		case "absolute_timeout":
			if err := parseDuration(d, &h.AbsoluteTimeout); err != nil {
				return err
			}
		case "touch_interval":
			if err := parseDuration(d, &h.TouchInterval); err != nil {
				return err
			}
		case "header_prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.HeaderPrefix = d.Val()
			if !session.ValidPrefix(h.HeaderPrefix) {
				return d.Errf("header_prefix %q must be a header name ending in '-'", h.HeaderPrefix)
			}
		case "renew_on":
			keys, err := parseKeys(d)
			if err != nil {
				return err
			}
			h.RenewOn = keys
		case "writable":
			keys, err := parseKeys(d)
			if err != nil {
				return err
			}
			h.Writable = keys
		case "forward_cookie":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardCookie = true
		case "limits":
			if err := h.unmarshalLimits(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown session subdirective %q", d.Val())
		}
	}
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
	err := eachSetting(d, func(sub, val string) error {
		switch sub {
		case "domain":
			c.Domain = val
		case "path":
			c.Path = val
		case "secure":
			c.Secure = val
		case "same_site":
			c.SameSite = val
		default:
			return d.Errf("unknown cookie subdirective %q", sub)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := c.build(); err != nil {
		return d.WrapErr(err)
	}
	return nil
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
			return nil, d.Errf("%s: %q is not a session key: use 1 to 64 of a-z 0-9 - _", name, k)
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
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "lock_timeout":
			if err := parseDuration(d, &b.LockTimeout); err != nil {
				return err
			}
		case "no_sync":
			if d.NextArg() {
				return d.ArgErr()
			}
			b.NoSync = true
		default:
			return d.Errf("unknown bolt store subdirective %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*BoltStore)(nil)
)
