package caddysession

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
)

// BindConfig binds each session to the client that created it: a request
// that presents the session's cookie from another client is served as
// anonymous, and the session is left as it was, for the client it
// belongs to. Both bindings are opt-in because legitimate use breaks
// them: a browser update changes the User-Agent, and a phone moving
// between networks changes its address.
//
// A session created before its binding was configured has nothing to be
// compared with and stays unbound until it ends.
type BindConfig struct {
	// Bind to the User-Agent the session was created with, as kept by
	// record_user_agent (which bind user_agent turns on): it must match
	// exactly, after both are cut to 256 bytes.
	UserAgent bool `json:"user_agent,omitempty"`

	// Bind to the network of the client that created the session: its
	// address (the client IP as Caddy determines it, through the server's
	// trusted_proxies) masked to this many bits. 32 and 128 bind to one
	// address. The network a session was created in is kept with it, so a
	// change of these lengths applies to sessions created afterwards.
	IP *BindIPConfig `json:"ip,omitempty"`
}

// BindIPConfig is the prefix length of the network a session is bound
// to, by address family.
type BindIPConfig struct {
	// Bits of an IPv4 address. Default: 32.
	IPv4Prefix int `json:"ipv4_prefix,omitempty"`
	// Bits of an IPv6 address. Default: 64, a customer's subnet, since
	// the rest of the address changes with privacy extensions.
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`
}

// errBindNothing refuses a bind that names nothing to bind to.
var errBindNothing = errors.New("bind: name what to bind sessions to: user_agent, ip, or both")

// provision checks the binding and turns on what it needs: a session
// bound to its User-Agent must keep it.
func (c *BindConfig) provision(h *Handler) error {
	switch {
	case c == nil:
		return nil
	case !c.UserAgent && c.IP == nil:
		return errBindNothing
	case c.UserAgent:
		h.RecordUserAgent = true
	}
	if c.IP != nil {
		return c.IP.provision()
	}
	return nil
}

// provision checks the lengths and fills in the defaults.
func (c *BindIPConfig) provision() error {
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix = 32
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = 64
	}
	if c.IPv4Prefix < 1 || c.IPv4Prefix > 32 {
		return fmt.Errorf("bind ip: the IPv4 prefix length %d is not between 1 and 32", c.IPv4Prefix)
	}
	if c.IPv6Prefix < 1 || c.IPv6Prefix > 128 {
		return fmt.Errorf("bind ip: the IPv6 prefix length %d is not between 1 and 128", c.IPv6Prefix)
	}
	return nil
}

// clientNet is the network of r's client, masked as configured, in CIDR
// notation; "" when Caddy knows no client address (then the session is
// created unbound, since there is nothing to bind it to).
func (c *BindIPConfig) clientNet(r *http.Request) string {
	addr, ok := clientAddr(r)
	if !ok {
		return ""
	}
	bits := c.IPv6Prefix
	if addr.Is4() {
		bits = c.IPv4Prefix
	}
	prefix, err := addr.Prefix(bits)
	if err != nil {
		return ""
	}
	return prefix.String()
}

// clientAddr is the client's address as Caddy determined it (trusted
// proxies applied), an IPv4-mapped IPv6 address read as IPv4.
func clientAddr(r *http.Request) (netip.Addr, bool) {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

// The bindings a request can break, for logs and metrics.
const (
	boundToUserAgent = "user_agent"
	boundToIP        = "ip"
)

// broken names the binding of rec that r breaks, "" if none: r comes from
// a User-Agent or a network other than the one the session was created
// by. What the record does not hold is not compared.
func (c *BindConfig) broken(rec *session.Record, r *http.Request) string {
	if c == nil {
		return ""
	}
	if c.UserAgent && rec.UserAgent != "" && rec.UserAgent != session.TruncateUserAgent(r.UserAgent()) {
		return boundToUserAgent
	}
	if c.IP != nil && rec.ClientNet != "" && !inNet(rec.ClientNet, r) {
		return boundToIP
	}
	return ""
}

// errTooEarly answers a request in TLS early data (HTTP/3's 0-RTT, which
// Caddy accepts by default) that presents a session bound to a network.
// Until the handshake completes, nothing proves that the client owns the
// source address it sends from: a client resuming a TLS session of its
// own can send one from an address it spoofs, with a stolen cookie, and
// act blind as the session's owner. 425 tells the client to send the
// request again once the handshake is done (browsers do so at once), as
// Caddy's remote_ip matcher answers such a request.
var errTooEarly = caddyhttp.Error(http.StatusTooEarly,
	errors.New("the session is bound to its client's network, which a request in TLS early data cannot prove: send it again after the handshake"))

// unproven is errTooEarly when r came in TLS early data and rec is bound
// to a network, which r's address cannot be checked against yet; nil
// otherwise, also when a binding of rec is broken already (the request is
// then served as anonymous, which needs no proof).
func (c *BindConfig) unproven(rec *session.Record, r *http.Request) error {
	if c == nil || c.IP == nil || rec.ClientNet == "" || r.TLS == nil || r.TLS.HandshakeComplete {
		return nil
	}
	return errTooEarly
}

// inNet reports whether r's client is in the network held, which a record
// keeps in CIDR notation. A network that does not parse holds no one.
func inNet(held string, r *http.Request) bool {
	prefix, err := netip.ParsePrefix(held)
	if err != nil {
		return false
	}
	addr, ok := clientAddr(r)
	return ok && prefix.Contains(addr)
}

// logUnbound tells that a request presented a session bound to another
// client, which it is not given.
func (h *Handler) logUnbound(hash session.Hash, binding string) {
	sessionMetrics.unbound.WithLabelValues(binding).Inc()
	h.logger.Warn("session presented by another client than the one it is bound to; serving the request as anonymous",
		zap.String("session", hash.Short()), zap.String("binding", binding))
}

// unmarshalBind reads bind:
//
//	bind [user_agent] [ip [<ipv4 prefix length> [<ipv6 prefix length>]]]
func (h *Handler) unmarshalBind(d *caddyfile.Dispenser) error {
	h.Bind = &BindConfig{}
	for d.NextArg() {
		switch d.Val() {
		case "user_agent":
			h.Bind.UserAgent = true
		case "ip":
			h.Bind.IP = &BindIPConfig{}
			for _, bits := range []*int{&h.Bind.IP.IPv4Prefix, &h.Bind.IP.IPv6Prefix} {
				if !d.NextArg() {
					break
				}
				n, err := strconv.Atoi(d.Val())
				if err != nil {
					d.Prev() // not a length: the next binding
					break
				}
				*bits = n
			}
		default:
			return d.Errf("bind: unknown binding %q; give user_agent, ip, or both", d.Val())
		}
	}
	if !h.Bind.UserAgent && h.Bind.IP == nil {
		return d.Err(errBindNothing.Error())
	}
	return nil
}
