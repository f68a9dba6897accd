package caddysession

import (
	"fmt"
	"strings"

	"github.com/caddy-session/caddy-session/session"
)

// commonHeaders are header names of HTTP, browsers, proxies and app
// servers that no session namespace may cover. A handler removes every
// request header of its namespace, and takes every response header there
// as a command (an unknown one refuses the response's commands and is
// removed): with header_prefix X- the app lost X-Requested-With and the
// client X-Frame-Options, with Content- the request's and the response's
// Content-Type, with Sec- the browser's Fetch Metadata, and no login of
// such a response applied.
var commonHeaders = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Request-Method",
	"Alt-Svc", "Authorization", "Cache-Control", "CDN-Cache-Control", "Clear-Site-Data",
	"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
	"Content-Range", "Content-Security-Policy", "Content-Type", "Cookie",
	"Cross-Origin-Embedder-Policy", "Cross-Origin-Opener-Policy", "Cross-Origin-Resource-Policy",
	"Early-Data", "ETag", "Expect", "Forwarded", "Host", "If-Match", "If-Modified-Since",
	"If-None-Match", "If-Range", "Keep-Alive", "Last-Modified", "Link", "Location", "Origin",
	"Permissions-Policy", "Priority", "Proxy-Authenticate", "Proxy-Authorization", "Range",
	"Referer", "Referrer-Policy", "Retry-After", "Sec-CH-UA", "Sec-Fetch-Dest", "Sec-Fetch-Mode",
	"Sec-Fetch-Site", "Sec-Fetch-User", "Sec-WebSocket-Accept", "Sec-WebSocket-Key",
	"Sec-WebSocket-Protocol", "Sec-WebSocket-Version", "Server-Timing", "Set-Cookie",
	"Strict-Transport-Security", "Surrogate-Control", "TE", "Trailer", "Transfer-Encoding",
	"Upgrade", "User-Agent", "Vary", "Via", "WWW-Authenticate", "X-Accel-Expires",
	"X-Accel-Redirect", "X-Content-Type-Options", "X-CSRF-Token", "X-Forwarded-For",
	"X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options", "X-Real-IP", "X-Request-ID",
	"X-Requested-With", "X-Robots-Tag", "X-Sendfile", "X-XSRF-Token",
}

// checkPrefixCovers refuses a header_prefix whose namespace, in any of
// its spellings, holds a common header.
func checkPrefixCovers(prefix string, p *session.Protocol) error {
	for _, name := range commonHeaders {
		if p.InNamespace(name) {
			return fmt.Errorf("header_prefix %q covers the common header %s, which every session handler would remove from requests and responses; use a prefix of the session's own, such as X-Session- or X-App-Session-", prefix, name)
		}
	}
	return nil
}

// checkOverlaps refuses two handlers of one server whose request
// namespaces are one but whose command namespaces are two (X-Session- and
// X.Session-: neither removed the commands its app sent in the other's,
// and the other applied them past the first one's writable), or whose
// namespaces differ but one lies within the other (X-Session- and X-Session-Admin-):
// the app behind both read the inner one's headers as keys of the outer
// one (the nested session's role as the site session's admin-role), and
// the handler of the inner namespace removed what the other forwarded
// there. Only handlers that one request may pass both of count (one in
// the other's route list, or nested in it): the apps of two sites of one
// port, each with its own handler, never see each other's namespace, and
// such configs loaded and worked before this check.
func (w *walker) checkOverlaps(handlers []*Handler) error {
	for _, h := range handlers {
		for _, o := range handlers {
			if !w.runsBefore(h, o) && !w.runsBefore(o, h) {
				continue
			}
			a, b := h.protocol.Namespace(), o.protocol.Namespace()
			if a == b && commandNamespace(prefixOf(h)) != commandNamespace(prefixOf(o)) {
				x, y := min(prefixOf(h), prefixOf(o)), max(prefixOf(h), prefixOf(o))
				return fmt.Errorf("header_prefix %q and %q of two session handlers on the same server differ in '.' against '-': requests read them as one namespace and responses as two, so the app behind one could command the other past its writable; spell them alike", x, y)
			}
			if a != b && strings.HasPrefix(b, a) {
				return fmt.Errorf("header_prefix %q of one session handler lies within header_prefix %q of another on the same server, so the app cannot tell their headers apart and one handler removes what the other forwards; give them prefixes where neither starts with the other, such as %s and %s",
					prefixOf(o), prefixOf(h), prefixOf(h), apartFrom(a))
			}
		}
	}
	return nil
}

// apartFrom is a prefix to suggest beside a handler's of the request
// namespace ns: one whose namespace neither is ns nor starts with it nor
// is started by it. X-Admin- alone was suggested beside X-Admin- (or
// X.Admin-, X_Admin-), which is the one namespace again.
func apartFrom(ns string) string {
	candidates := []string{"X-Admin-", "X-Admin-Session-", "X-Inner-Session-"}
	for _, c := range candidates {
		n := session.NewProtocol(c, nil, session.Limits{}).Namespace()
		if !strings.HasPrefix(n, ns) && !strings.HasPrefix(ns, n) {
			return c
		}
	}
	return candidates[len(candidates)-1]
}

// commandNamespace is a prefix as responses read it: commands fold case
// and '_', but not '.' (session.Protocol).
func commandNamespace(prefix string) string {
	return strings.ReplaceAll(strings.ToLower(prefix), "_", "-")
}

// prefixOf is the header_prefix of a handler as configured.
func prefixOf(h *Handler) string {
	if h.HeaderPrefix == "" {
		return session.DefaultHeaderPrefix
	}
	return h.HeaderPrefix
}
