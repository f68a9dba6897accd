package caddysession

import (
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
)

// setNamespaces gives each handler of the config the namespaces of the
// others that differ from its own. Without them, a handler nested in
// another with another header_prefix let the app behind it write, in the
// outer handler's namespace, what its own writable refuses (the outer
// handler applied it), and a client's header in the nested handler's
// namespace reached the app on the rest of the site, where only the outer
// handler runs; and a client's header in one site's namespace reached
// the app behind a site on another port whose handler uses another
// prefix, which is often the same app.
func setNamespaces(handlers []*Handler) {
	for _, h := range handlers {
		h.others = nil
		for _, o := range handlers {
			if h.protocol.SameNamespace(o.protocol) ||
				slices.ContainsFunc(h.others, o.protocol.SameNamespace) {
				continue
			}
			h.others = append(h.others, o.protocol)
		}
	}
}

// scrubbedVar marks a request whose headers and trailers a session handler
// has cleared of the namespaces of all the server's session handlers. The
// error guard reads it: a request that no session handler reached (an
// error raised before it, such as request_body's 413) is still as the
// client sent it (ErrorGuard.scrubRequest).
const scrubbedVar = "\x00caddy-session-scrubbed"

// scrubRequest removes the namespace of p from the request: its headers,
// the names the Connection header gives of it, and its trailers, also
// those that arrive with the end of the body.
func scrubRequest(r *http.Request, p *session.Protocol) {
	noH2C(r.Header)
	p.Scrub(r.Header)
	p.ScrubConnection(r.Header)
	p.Scrub(r.Trailer)
	if r.Trailer != nil && r.Body != nil {
		r.Body = &scrubTrailerAtEOF{ReadCloser: r.Body, trailer: r.Trailer, protocol: p}
	}
}

// noH2C takes an upgrade to h2c off the request (and its HTTP2-Settings),
// keeping any other protocol it offers. reverse_proxy forwards any
// upgrade, and an app server that switches to h2c without HTTP2-Settings
// in Connection (which reverse_proxy rewrites to Upgrade alone) would
// then read the client's requests from a tunnel, past the session handler:
// a client's X-Session-User there reached the app ("h2c smuggling"). No
// browser asks a proxy for h2c.
func noH2C(h http.Header) {
	values, ok := h["Upgrade"]
	if !ok {
		return
	}
	var kept []string
	smuggled := false
	for _, v := range values {
		for token := range strings.SplitSeq(v, ",") {
			token = strings.TrimSpace(token)
			if strings.EqualFold(token, "h2c") {
				smuggled = true
			} else if token != "" {
				kept = append(kept, token)
			}
		}
	}
	if !smuggled {
		return
	}
	delete(h, "Http2-Settings")
	if len(kept) == 0 {
		delete(h, "Upgrade")
		return
	}
	h["Upgrade"] = []string{strings.Join(kept, ", ")}
}

// scrubOthersFirst removes the other handlers' namespaces from the request
// when h is the first session handler it reaches: what the client sent in
// any of them is gone before any app sees the request. A nested handler
// leaves them: what remains there was forwarded by a handler around it,
// and reaches the app behind it. The first handler marks the request
// (scrubbedVar) also when the server has no other namespace.
func (h *Handler) scrubOthersFirst(r *http.Request) {
	if caddyhttp.GetVar(r.Context(), scrubbedVar) != nil {
		return
	}
	for _, p := range h.others {
		scrubRequest(r, p)
	}
	caddyhttp.SetVar(r.Context(), scrubbedVar, true)
}

// presetOthers is what the response holds of the other handlers'
// namespaces before h passes the request on: fields that a handler around
// h set at once (Caddy's `header` directive, `header /logout
// X-Session-Destroy true`), which are commands for a handler around h and
// stay. Nil when there are none, the common case.
func (h *Handler) presetOthers(hdr http.Header) http.Header {
	var preset http.Header
	for name, values := range hdr {
		if h.inOthers(name) {
			if preset == nil {
				preset = http.Header{}
			}
			preset[name] = slices.Clone(values)
		}
	}
	return preset
}

// scrubOthers removes the other handlers' namespaces from a response, once
// h has taken its own commands, keeping only what was preset before h
// passed the request on: each handler applies only commands of its own
// namespace, and none that the app behind h sends in another's passes h on
// the way out, to a handler around it or to the client.
func (h *Handler) scrubOthers(hdr, preset http.Header) {
	if len(h.others) == 0 {
		return // the common case: one namespace on the server
	}
	for name := range hdr {
		if !h.inOthers(name) {
			continue
		}
		if kept, ok := preset[name]; ok {
			hdr[name] = kept
			continue
		}
		delete(hdr, name)
		if ce := h.logger.Check(zap.WarnLevel, "removed a header of another session handler's namespace from the response; each handler applies only its own header_prefix"); ce != nil {
			ce.Write(zap.String("header", name))
		}
	}
}

// inOthers reports whether a header or trailer name is in the namespace
// of another handler of h's server.
func (h *Handler) inOthers(name string) bool {
	name = strings.TrimPrefix(name, http.TrailerPrefix)
	for _, p := range h.others {
		if p.InNamespace(name) {
			return true
		}
	}
	return false
}
