package caddysession

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// unmarshalCSRF reads the csrf block; csrf alone turns the origin check on
// with its defaults:
//
//	csrf {
//		trusted_origins <origin...>
//		allow_same_site
//		strict
//		exempt <matcher...>
//		token {
//			header <name>
//			field <name>
//			max_body <size>
//		}
//	}
func (h *Handler) unmarshalCSRF(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if h.CSRF == nil {
		h.CSRF = new(CSRFConfig)
	}
	return eachSubdirective(d, "csrf", h, csrfSubdirectives)
}

// csrfSubdirectives parse each subdirective of the csrf block, with the
// dispenser on its name. They take the handler, which resolves exempt's
// matchers.
var csrfSubdirectives = map[string]func(h *Handler, d *caddyfile.Dispenser) error{
	"trusted_origins": func(h *Handler, d *caddyfile.Dispenser) error {
		h.CSRF.TrustedOrigins = d.RemainingArgs()
		if len(h.CSRF.TrustedOrigins) == 0 {
			return d.ArgErr()
		}
		for _, o := range h.CSRF.TrustedOrigins {
			if _, err := parseTrustedOrigin(o); err != nil {
				return d.WrapErr(err)
			}
		}
		return nil
	},
	"allow_same_site": func(h *Handler, d *caddyfile.Dispenser) error { return parseFlag(d, &h.CSRF.AllowSameSite) },
	"strict":          func(h *Handler, d *caddyfile.Dispenser) error { return parseFlag(d, &h.CSRF.Strict) },
	"exempt": func(h *Handler, d *caddyfile.Dispenser) error {
		sets, err := h.unmarshalMatchers(d, "csrf exempt", "/webhooks/*", nil,
			"* would turn the protection off; name the requests that need no check (@name, or a path)")
		h.CSRF.ExemptRaw = append(h.CSRF.ExemptRaw, sets...)
		return err
	},
	"token": func(h *Handler, d *caddyfile.Dispenser) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		h.CSRF.Token = new(CSRFTokenConfig)
		return eachSubdirective(d, "csrf token", h.CSRF.Token, csrfTokenSubdirectives)
	},
}

// csrfTokenSubdirectives parse each subdirective of the token block.
var csrfTokenSubdirectives = map[string]func(c *CSRFTokenConfig, d *caddyfile.Dispenser) error{
	"header": func(c *CSRFTokenConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Header) },
	"field":  func(c *CSRFTokenConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.Field) },
	"max_body": func(c *CSRFTokenConfig, d *caddyfile.Dispenser) error {
		var val string
		if err := parseOneArg(d, &val); err != nil {
			return err
		}
		size, err := humanize.ParseBytes(val)
		if err != nil || size < 1 || size > maxCSRFMaxBody {
			return d.Errf("csrf token max_body: %q is not a size from 1 byte to 16MiB, such as 64KiB", val)
		}
		c.MaxBody = int(size)
		return nil
	},
}

// parseFlag reads a subdirective that takes no argument.
func parseFlag(d *caddyfile.Dispenser, into *bool) error {
	*into = true
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}
